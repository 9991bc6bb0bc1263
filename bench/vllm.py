"""Throughput of our server with the vLLM engine against vLLM's own OpenAI server (and our transformers engine).

Prints output tokens/s at concurrency 1, 4 and 16 for
  (a) our server, `python -m kaito.runtime.inference --engine vllm` (vLLM's app plus /chat, the 429 guard,
      KAITO's metrics),
  (b) vLLM's own server, `python -m vllm.entrypoints.openai.api_server`, same model and vLLM flags,
  (c) our server with the transformers engine,
and the ratios a/b (target >= 0.95 at every level) and c/b.

The model is a random Llama (hidden 512, 8 layers, 8 heads) built offline; every request is a short
prompt and exactly `--tokens` greedy tokens (EOS ignored). vLLM's engine busy-polls a core even when
idle, so while one server is measured the others are paused (SIGSTOP of their process groups); each
round measures the three in a rotated order; two sessions start the servers in opposite orders; the
table shows medians over all rounds and the median of the per-round a/b ratios.
Run: .venv-vllm/bin/python bench/vllm.py [--rounds 3] [--tokens 32] [--levels 1,4,16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder leads sys.path and `import vllm` would find this file: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
SERVED = "bench-llama"
PROMPTS = ["the quick brown fox jumps over the lazy dog", "hello world, this is a test of the server",
           "def encode(obj): return json.dumps(obj)", "import textwrap as tw; print(tw.dedent(s))"]


def build_bench_model(root: Path) -> tuple[Path, int]:
    """The random Llama, in a Hub cache layout under `root`; its directory and parameter count."""
    sys.path.insert(0, str(ROOT))
    from tests.support.tiny_model import build_tiny_model
    from transformers import AutoModelForCausalLM

    model = build_tiny_model(root, repo_id="kaito-bench/llama-512x8", hidden_size=512, num_heads=8, num_layers=8)
    return model.path, AutoModelForCausalLM.from_pretrained(model.path).num_parameters()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_commands(model: Path, ports: dict[str, int]) -> dict[str, list[str]]:
    def vllm_flags(port: int) -> list[str]:
        return ["--model", str(model), "--served-model-name", SERVED, "--dtype", "float32",
                "--host", "127.0.0.1", "--port", str(port), "--uvicorn-log-level", "warning"]

    return {
        "a": [sys.executable, "-m", "kaito.runtime.inference", "--engine", "vllm", "--adapters-dir", "",
              *vllm_flags(ports["a"])],
        "b": [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *vllm_flags(ports["b"])],
        "c": [sys.executable, "-m", "kaito.runtime.inference", "--engine", "transformers", "--model", str(model),
              "--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(ports["c"]), "--adapters-dir", "",
              "--max-running", "16"],
    }


# vLLM's CPU engine computes on one core and keeps the other for its API server; the transformers
# server gets one compute thread too (more OpenMP threads than free cores collapse on a shared machine).
SERVER_ENV = {"a": {}, "b": {}, "c": {"OMP_NUM_THREADS": "1"}}


def start(cmd: list[str], port: int, log: Path, extra_env: dict[str, str]) -> subprocess.Popen:
    import httpx

    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": f"{ROOT}/src:{ROOT}", **extra_env}
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode}): {' '.join(cmd)}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop(proc)
    raise SystemExit(f"server did not become ready: {' '.join(cmd)}; see {log}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # vLLM's engine processes, if any are left
    except ProcessLookupError:
        pass
    proc.wait(10)


async def drive(url: str, n: int, concurrency: int, tokens: int) -> float:
    """`n` completions with at most `concurrency` in flight; generated tokens per second."""
    import httpx

    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=600) as client:
        async def one(i: int) -> int:
            async with limit:
                reply = await client.post(url, json={"model": SERVED, "prompt": PROMPTS[i % len(PROMPTS)],
                                                     "max_tokens": tokens, "temperature": 0, "ignore_eos": True})
                reply.raise_for_status()
                return reply.json()["usage"]["completion_tokens"]

        started = time.perf_counter()
        produced = await asyncio.gather(*(one(i) for i in range(n)))
        return sum(produced) / (time.perf_counter() - started)


def pause(proc: subprocess.Popen, paused: bool) -> None:
    """Stop or continue a server's whole process group: a stopped vLLM engine does not busy-poll."""
    os.killpg(proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)


def measure(proc: subprocess.Popen, port: int, levels: list[int], tokens: int, per_level: int) -> dict[int, float]:
    pause(proc, False)
    try:
        url = f"http://127.0.0.1:{port}/v1/completions"
        asyncio.run(drive(url, 4, 4, tokens))  # warm-up after the pause
        return {level: asyncio.run(drive(url, max(per_level * level, 16), level, tokens)) for level in levels}
    finally:
        pause(proc, True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per session (two sessions)")
    parser.add_argument("--per-level", type=int, default=8, help="requests per level: this x concurrency (min 16)")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--levels", default="1,4,16")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    import vllm  # the package: this file's folder is no longer on sys.path

    work = Path(tempfile.mkdtemp(prefix="kaito-bench-vllm-"))
    log = work / "servers.log"
    model, params = build_bench_model(work / "hub")
    ports = {key: free_port() for key in "abc"}
    commands = server_commands(model, ports)
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine: other work runs beside this)")
    print(f"vLLM {vllm.__version__}; model: random Llama, {params / 1e6:.1f}M parameters (hidden 512, 8 layers, "
          f"8 heads), float32; {args.tokens} greedy tokens per request, EOS ignored; requests per level: "
          f"max({args.per_level} x concurrency, 16); 2 sessions (start orders a,b,c and b,a,c) of {args.rounds} "
          "rounds. In a session the three servers stay up, each paused (SIGSTOP of its process group) while "
          f"another is measured, in a rotated order per round, one warm-up batch after each pause; logs: {log}")
    for key, cmd in commands.items():
        env = " ".join(f"{k}={v}" for k, v in SERVER_ENV[key].items())
        print(f"  ({key}) VLLM_CPU_KVCACHE_SPACE=1 {env + ' ' if env else ''}{shlex.join(cmd)}")
    results: dict[str, list[dict[int, float]]] = {k: [] for k in commands}
    # Two sessions with the servers started in opposite orders: on this machine the instance started
    # second measured faster whichever it was, so each side gets both positions.
    for session, start_order in enumerate((["a", "b", "c"], ["b", "a", "c"])):
        procs: dict[str, subprocess.Popen] = {}
        try:
            for key in start_order:  # one at a time: two vLLM engines starting at once fight for the cores
                procs[key] = start(commands[key], ports[key], log, SERVER_ENV[key])
                pause(procs[key], True)
            for round_no in range(args.rounds):
                order = list(commands)[round_no % 3:] + list(commands)[:round_no % 3]
                for key in order:
                    results[key].append(measure(procs[key], ports[key], levels, args.tokens, args.per_level))
                    print(f"session {session + 1} round {round_no + 1} ({key}): " + "  ".join(
                        f"c={lv} {results[key][-1][lv]:7.1f} tok/s" for lv in levels), flush=True)
        finally:
            for proc in procs.values():
                pause(proc, False)
                stop(proc)
    print(f"\nload average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"concurrency  ours-vllm(a)  vllm-own(b)  ours-transformers(c)   a/b    c/b  median of per-round a/b  "
          f"(medians of {2 * args.rounds} rounds, output tokens/s)")
    for level in levels:
        a, b, c = (statistics.median(r[level] for r in results[k]) for k in ("a", "b", "c"))
        paired = statistics.median(ra[level] / rb[level] for ra, rb in zip(results["a"], results["b"], strict=True))
        print(f"{level:>11}  {a:12.1f}  {b:11.1f}  {c:20.1f}  {a / b:5.2f}  {c / b:5.2f}  {paired:23.2f}")


if __name__ == "__main__":
    main()
