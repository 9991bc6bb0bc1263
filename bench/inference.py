"""Throughput and time-to-first-token of the model server, against named peers on the same model.

At each concurrency level (default 1, 4, 16) it measures, over streamed `/v1/completions` requests
(greedy, a short prompt, exactly `--tokens` new tokens with EOS ignored, so all do the same work):
  (a) our server (`python -m kaito.runtime.inference`, transformers engine), over HTTP;
  (v) vLLM's own OpenAI server (`vllm.entrypoints.openai.api_server`) from `--vllm-python`;
  (c) `model.generate` on a batch of the same size in this process: the engine's own limit;
  (b) optionally (`--kaito-style`) a server built as KAITO v0.3.2's is: FastAPI, a sync `/chat`
      route calling a transformers `pipeline` per request (no batching).
and prints output tokens/s, p50 time to first token (TTFT), and the ratios a/c and a/v. Targets:
a/c >= 1.0 at 4 and 16, a/v >= 1.0 at every level, TTFT p50 at 16 <= 3x the single-stream TTFT.
It also prints the CPU time each one spent per generated token (every process of a server, every
thread) and how many cores it kept busy: on a shared machine, where the wall-clock ratios follow
whoever else is running, that is the number that says which one does less work per token.

Fair on a shared machine: the servers run side by side, the measurements interleave (ours, vLLM,
raw, then again) for `--repeats` rounds, and medians are reported. vLLM's CPU build busy-polls a
core while it is up, which would slow whatever is measured beside it: its processes are paused
(SIGSTOP) except while vLLM itself is measured, and stopped at the end. The model is a random Llama (hidden 384, 4 layers)
built offline here.

Run: .venv/bin/python bench/inference.py [--tokens 64] [--levels 1,4,16] [--repeats 3]
         [--vllm-python /path/to/python] [--threads 1] [--kaito-style] [--in-process]
         [--baseline-pythonpath OLD_CHECKOUT/src]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["the quick brown fox jumps over the lazy dog", "hello world, this is a test of the server",
           "def encode(obj): return json.dumps(obj)", "import textwrap as tw; print(tw.dedent(s))"]
SERVED = "bench-llama"


def build_bench_model(root: Path) -> Path:
    """A random Llama big enough that a decode step costs real compute on a CPU."""
    sys.path.insert(0, str(ROOT))
    import torch
    from tests.support.tiny_model import build_tiny_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tiny = build_tiny_model(root / "hub")
    out = root / SERVED
    tokenizer = AutoTokenizer.from_pretrained(tiny.path)
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=384, intermediate_size=1024, num_hidden_layers=4,
                         num_attention_heads=6, num_key_value_heads=6, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    return out


class KaitoBody(BaseModel):
    prompt: str
    generate_kwargs: dict = {}


def kaito_style_app(model_dir: str):
    """KAITO v0.3.2's shape: one pipeline, a sync route, one request through it at a time each."""
    import torch
    from fastapi import FastAPI
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    app = FastAPI()

    @app.get("/healthz")
    def healthz():
        return {"status": "Healthy"}

    @app.post("/chat")
    def chat(body: KaitoBody):  # sync, as KAITO's: FastAPI runs it in its thread pool
        out = pipe(body.prompt, **body.generate_kwargs)
        return {"Result": "".join(o["generated_text"] for o in out)}

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, ready_path: str, env: dict[str, str] | None = None,
          timeout: float = 300) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": f"{ROOT}/src:{ROOT}", **(env or {})},
                            start_new_session=True)  # its own process group: pause/resume/stop all of it
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early (code {proc.returncode}): {' '.join(cmd)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"server did not become ready: {' '.join(cmd)}")


async def drive_streams(url: str, bodies: list[dict], concurrency: int) -> tuple[float, list[float]]:
    """Stream all bodies, at most `concurrency` in flight: (generated tokens/s, each request's TTFT)."""
    import httpx

    limit = asyncio.Semaphore(concurrency)
    ttfts: list[float] = []
    async with httpx.AsyncClient(timeout=600) as client:
        async def one(body) -> int:
            async with limit:
                sent = time.perf_counter()
                first, tokens = None, 0
                async with client.stream("POST", url, json=body) as reply:
                    reply.raise_for_status()
                    async for line in reply.aiter_lines():
                        if not line.startswith("data: {"):
                            continue
                        chunk = json.loads(line[6:])
                        if first is None and any(c.get("text") for c in chunk.get("choices", ())):
                            first = time.perf_counter() - sent
                        if chunk.get("usage"):
                            tokens = chunk["usage"]["completion_tokens"]
                ttfts.append(first if first is not None else float("nan"))
                return tokens

        started = time.perf_counter()
        tokens = await asyncio.gather(*(one(b) for b in bodies))
        return sum(tokens) / (time.perf_counter() - started), ttfts


async def drive_kaito(url: str, bodies: list[dict], concurrency: int, tokens: int) -> float:
    import httpx

    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=600) as client:
        async def one(body):
            async with limit:
                (await client.post(url, json=body)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return len(bodies) * tokens / (time.perf_counter() - started)


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group (all threads; Linux /proc)."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ..., utime (11), stime (12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure_raw(model_dir: Path, batch: int, tokens: int, rounds: int) -> tuple[float, float, float]:
    """(tokens/s, CPU seconds per token, cores busy) of `generate` on a batch, in this process."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=2, do_sample=False)  # warm-up
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(rounds):
            model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return batch * tokens * rounds / wall, cpu / (batch * tokens * rounds), cpu / wall


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def default_vllm_python() -> str | None:
    candidate = ROOT / ".venv-vllm" / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def stream_bodies(level: int, tokens: int) -> list[dict]:
    return [{"model": SERVED, "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": tokens, "temperature": 0,
             "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
            for i in range(max(2 * level, 4))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for ours and raw generate (on a small shared machine, OpenMP "
                             "spinning with more threads than free cores collapses throughput)")
    parser.add_argument("--vllm-python", default=default_vllm_python(),
                        help="python of a venv with vLLM (default: .venv-vllm/bin/python when it exists)")
    parser.add_argument("--kaito-style", action="store_true", help="also measure a KAITO-v0.3.2-style server")
    parser.add_argument("--baseline-pythonpath", metavar="PATH",
                        help="also run our server from this PYTHONPATH (e.g. an older checkout's src), measured "
                             "in the same interleaved rounds as `before`: a before/after under the same load")
    parser.add_argument("--in-process", action="store_true",
                        help="also run our server with its engine in a thread of the server process "
                             "(`--engine-process false`), measured in the same rounds as `thread`")
    parser.add_argument("--kaito-style-server", nargs=2, metavar=("MODEL_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kaito_style_server:
        import uvicorn

        uvicorn.run(kaito_style_app(args.kaito_style_server[0]), host="127.0.0.1",
                    port=int(args.kaito_style_server[1]), log_level="warning")
        return

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the servers inherit it
    import torch

    torch.set_num_threads(args.threads)
    levels = [int(x) for x in args.levels.split(",")]
    work = Path(tempfile.mkdtemp(prefix="kaito-bench-"))
    print("building the bench model ...", flush=True)
    model_dir = build_bench_model(work)
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        port = free_port()
        print("starting our server ...", flush=True)
        servers["ours"] = (start([sys.executable, "-m", "kaito.runtime.inference", "--model", str(model_dir),
                                  "--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port),
                                  "--adapters-dir", "", "--max-running", "16", "--max-queued", "256"],
                                 port, "/ready"), port)
        if args.baseline_pythonpath:
            port = free_port()
            print(f"starting the baseline server from {args.baseline_pythonpath} ...", flush=True)
            servers["before"] = (start([sys.executable, "-m", "kaito.runtime.inference", "--model", str(model_dir),
                                        "--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port),
                                        "--adapters-dir", "", "--max-running", "16", "--max-queued", "256"],
                                       port, "/ready", env={"PYTHONPATH": f"{args.baseline_pythonpath}:{ROOT}"}), port)
        if args.in_process:
            port = free_port()
            print("starting our server with its engine in-process (--engine-process false) ...", flush=True)
            servers["thread"] = (start([sys.executable, "-m", "kaito.runtime.inference", "--model", str(model_dir),
                                        "--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port),
                                        "--adapters-dir", "", "--max-running", "16", "--max-queued", "256",
                                        "--engine-process", "false"], port, "/ready"), port)
        if args.vllm_python and Path(args.vllm_python).exists():
            port = free_port()
            print(f"starting vLLM's OpenAI server ({args.vllm_python}; about a minute) ...", flush=True)
            servers["vllm"] = (start([args.vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model",
                                      str(model_dir), "--served-model-name", SERVED, "--dtype", "float32",
                                      "--host", "127.0.0.1", "--port", str(port), "--max-num-seqs", "16",
                                      "--disable-log-stats"],
                                     port, "/health", env={"VLLM_CPU_KVCACHE_SPACE": "1"}, timeout=600), port)
        else:
            print(f"vLLM: ABSENT (no python at {args.vllm_python or '.venv-vllm/bin/python'}; pass "
                  "--vllm-python): the a/v column is not measured", flush=True)
        if args.kaito_style:
            port = free_port()
            servers["kaito"] = (start([sys.executable, __file__, "--kaito-style-server", str(model_dir), str(port)],
                                      port, "/healthz"), port)
        results: dict[tuple[str, int], list[float]] = {}
        ttfts: dict[tuple[str, int], list[float]] = {}
        costs: dict[tuple[str, int], list[tuple[float, float]]] = {}  # (CPU s per token, cores busy)
        for name in ("ours", "before", "thread", "vllm"):  # warm-up: first-call costs do not count
            if name in servers:
                asyncio.run(drive_streams(f"http://127.0.0.1:{servers[name][1]}/v1/completions",
                                          stream_bodies(1, 4)[:2], 1))
        if "vllm" in servers:
            signal_group(servers["vllm"][0], signal.SIGSTOP)
        for round_ in range(args.repeats):
            for level in levels:
                for name in ("ours", "before", "thread", "vllm"):
                    if name not in servers:
                        continue
                    if name == "vllm":  # resumed, and warmed again so the pause costs it nothing
                        signal_group(servers["vllm"][0], signal.SIGCONT)
                        time.sleep(2)
                        asyncio.run(drive_streams(f"http://127.0.0.1:{servers[name][1]}/v1/completions",
                                                  stream_bodies(2, 8), 2))
                    bodies = stream_bodies(level, args.tokens)
                    cpu, started = group_cpu_seconds(servers[name][0].pid), time.perf_counter()
                    rate, firsts = asyncio.run(drive_streams(
                        f"http://127.0.0.1:{servers[name][1]}/v1/completions", bodies, level))
                    cpu, wall = group_cpu_seconds(servers[name][0].pid) - cpu, time.perf_counter() - started
                    costs.setdefault((name, level), []).append((cpu / (len(bodies) * args.tokens), cpu / wall))
                    if name == "vllm":
                        signal_group(servers["vllm"][0], signal.SIGSTOP)
                    results.setdefault((name, level), []).append(rate)
                    ttfts.setdefault((name, level), []).extend(firsts)
                rate, per_token, busy = measure_raw(model_dir, level, args.tokens, rounds=2)
                results.setdefault(("raw", level), []).append(rate)
                costs.setdefault(("raw", level), []).append((per_token, busy))
                if "kaito" in servers:
                    bodies = [{"prompt": PROMPTS[i % len(PROMPTS)], "generate_kwargs": {
                        "max_new_tokens": args.tokens, "min_new_tokens": args.tokens, "do_sample": False}}
                        for i in range(max(2 * level, 4))]
                    results.setdefault(("kaito", level), []).append(asyncio.run(drive_kaito(
                        f"http://127.0.0.1:{servers['kaito'][1]}/chat", bodies, level, args.tokens)))
                print(f"round {round_ + 1}, concurrency {level:>2}: " + " | ".join(
                    f"{n} {results[(n, level)][-1]:.1f} tok/s" for n in ("ours", "before", "thread", "vllm", "raw", "kaito")
                    if (n, level) in results), flush=True)
        report(results, ttfts, levels, args)
        report_costs(costs, levels)
    finally:
        for proc, _ in servers.values():
            signal_group(proc, signal.SIGCONT)
            signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)


def report(results, ttfts, levels: list[int], args) -> None:
    def med(key) -> float | None:
        return statistics.median(results[key]) if key in results else None

    def p50(key) -> float | None:
        values = [v for v in ttfts.get(key, ()) if v == v]
        return statistics.median(values) * 1000 if values else None

    def fmt(value, spec: str = "8.1f") -> str:
        return format(value, spec) if value is not None else "       -"

    print(f"\nmedians of {args.repeats} interleaved rounds, {args.tokens} tokens per request, "
          f"torch threads {args.threads} (a shared machine: see the load when reading them)")
    print("concurrency   ours(a)  vLLM(v)   raw(c)  kaito(b)    a/c    a/v  TTFT50 ours  TTFT50 vLLM")
    for level in levels:
        a, v, c, b = (med((n, level)) for n in ("ours", "vllm", "raw", "kaito"))
        print(f"{level:>11}  {fmt(a)} {fmt(v)} {fmt(c)}  {fmt(b)}  {fmt(a / c if a and c else None, '5.2f')}  "
              f"{fmt(a / v if a and v else None, '5.2f')}  {fmt(p50(('ours', level)), '8.1f')} ms  "
              f"{fmt(p50(('vllm', level)), '8.1f')} ms")
    if ("before", levels[0]) in results:
        for level in levels:
            b, a = med(("before", level)), med(("ours", level))
            print(f"before/after at {level:>2}: before {b:8.1f} tok/s, TTFT50 {fmt(p50(('before', level)), '6.1f')} ms"
                  f" -> after {a:8.1f} tok/s, TTFT50 {fmt(p50(('ours', level)), '6.1f')} ms ({a / b:4.2f}x)")
    if ("thread", levels[0]) in results:
        for level in levels:
            t, a = med(("thread", level)), med(("ours", level))
            print(f"engine in-process/own process at {level:>2}: {t:8.1f} tok/s, TTFT50 "
                  f"{fmt(p50(('thread', level)), '6.1f')} ms -> {a:8.1f} tok/s, TTFT50 "
                  f"{fmt(p50(('ours', level)), '6.1f')} ms ({a / t:4.2f}x)")
    if 1 in levels and 16 in levels:
        for name in ("before", "thread", "ours", "vllm"):
            single, busy = p50((name, 1)), p50((name, 16))
            if single and busy:
                print(f"TTFT p50 at 16 / at 1 ({name}): {busy / single:.2f}" + (" (target: <= 3)" if name == "ours" else ""))
    if "vllm" not in {n for n, _ in results}:
        print("vLLM: ABSENT - no ratio to vLLM's server was measured")


def report_costs(costs, levels: list[int]) -> None:
    names = [n for n in ("ours", "before", "thread", "vllm", "raw") if (n, levels[0]) in costs]
    print("\nCPU ms per generated token (every process and thread of each; lower is better) / cores kept busy")
    print("concurrency" + "".join(f"{n:>18}" for n in names))
    for level in levels:
        cells = []
        for name in names:
            per_token = statistics.median(c for c, _ in costs[(name, level)]) * 1000
            busy = statistics.median(b for _, b in costs[(name, level)])
            cells.append(f"{per_token:9.2f} / {busy:4.2f}")
        print(f"{level:>11}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
