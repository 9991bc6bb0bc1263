"""Throughput of the model server: ours vs a KAITO-v0.3.2-style server vs raw batched generate.

Prints output tokens/s at concurrency 1, 4 and 16 for
  (a) our server (`python -m kaito.runtime.inference`, transformers engine) over HTTP,
  (b) a server built the way KAITO v0.3.2's is: FastAPI, a sync `/chat` route calling a
      transformers `pipeline` per request (no batching), over HTTP,
  (c) `model.generate` on a batch of the same size in one process: the engine's own limit,
and the ratios a/b and a/c. Targets at 16: a/b >= 4, a/c >= 0.8.

The model is a random Llama (hidden 384, 4 layers) built offline here; every request is greedy,
a short prompt and exactly `--tokens` new tokens (EOS ignored), so all three do the same work.
Run: .venv/bin/python bench/inference.py [--tokens 64] [--levels 1,4,16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["the quick brown fox jumps over the lazy dog", "hello world, this is a test of the server",
           "def encode(obj): return json.dumps(obj)", "import textwrap as tw; print(tw.dedent(s))"]


def build_bench_model(root: Path) -> Path:
    """A random Llama big enough that a decode step costs real compute on a CPU."""
    sys.path.insert(0, str(ROOT))
    import torch
    from tests.support.tiny_model import build_tiny_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tiny = build_tiny_model(root / "hub")
    out = root / "bench-llama"
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


def start(cmd: list[str], port: int, ready_path: str) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": f"{ROOT}/src:{ROOT}"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early: {' '.join(cmd)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not become ready")


async def drive(url: str, bodies: list[dict], concurrency: int, count_tokens) -> float:
    """Send all bodies with at most `concurrency` in flight; return generated tokens per second."""
    import httpx

    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=600) as client:
        async def one(body):
            async with limit:
                reply = await client.post(url, json=body)
                reply.raise_for_status()
                return count_tokens(reply.json())

        started = time.perf_counter()
        tokens = await asyncio.gather(*(one(b) for b in bodies))
        return sum(tokens) / (time.perf_counter() - started)


def batch_stats(port: int) -> tuple[float, float]:
    """(sum, count) of our server's `kaito:batch_size` histogram."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
              if s.name in ("kaito:batch_size_sum", "kaito:batch_size_count")}
    return values.get("kaito:batch_size_sum", 0.0), values.get("kaito:batch_size_count", 0.0)


def measure_raw(model_dir: Path, batch: int, tokens: int, rounds: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
    inputs = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=2, do_sample=False)  # warm-up
        started = time.perf_counter()
        for _ in range(rounds):
            model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
    return batch * tokens * rounds / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for all three (on a small shared machine, OpenMP spinning "
                             "with more threads than free cores collapses throughput)")
    parser.add_argument("--kaito-style-server", nargs=2, metavar=("MODEL_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kaito_style_server:
        import uvicorn

        uvicorn.run(kaito_style_app(args.kaito_style_server[0]), host="127.0.0.1",
                    port=int(args.kaito_style_server[1]), log_level="warning")
        return

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the two servers inherit it
    import torch

    torch.set_num_threads(args.threads)
    levels = [int(x) for x in args.levels.split(",")]
    work = Path(tempfile.mkdtemp(prefix="kaito-bench-"))
    print("building the bench model ...", flush=True)
    model_dir = build_bench_model(work)
    ours_port, kaito_port = free_port(), free_port()
    print("starting our server and the KAITO-style server ...", flush=True)
    ours = start([sys.executable, "-m", "kaito.runtime.inference", "--model", str(model_dir), "--host",
                  "127.0.0.1", "--port", str(ours_port), "--adapters-dir", "", "--max-running", "16"],
                 ours_port, "/ready")
    kaito = start([sys.executable, __file__, "--kaito-style-server", str(model_dir), str(kaito_port)],
                  kaito_port, "/healthz")
    rows = []
    try:
        for level in levels:
            n = max(2 * level, 4)
            ours_bodies = [{"model": "bench-llama", "prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": args.tokens,
                            "temperature": 0, "ignore_eos": True} for i in range(n)]
            kaito_bodies = [{"prompt": PROMPTS[i % len(PROMPTS)], "generate_kwargs": {
                "max_new_tokens": args.tokens, "min_new_tokens": args.tokens, "do_sample": False}}
                for i in range(n)]
            # one warm-up request each, so first-call costs do not count
            asyncio.run(drive(f"http://127.0.0.1:{ours_port}/v1/completions", ours_bodies[:1], 1,
                              lambda r: r["usage"]["completion_tokens"]))
            asyncio.run(drive(f"http://127.0.0.1:{kaito_port}/chat", kaito_bodies[:1], 1, lambda r: 0))
            steps_before = batch_stats(ours_port)
            a = asyncio.run(drive(f"http://127.0.0.1:{ours_port}/v1/completions", ours_bodies, level,
                                  lambda r: r["usage"]["completion_tokens"]))
            steps_after = batch_stats(ours_port)
            mean_batch = (steps_after[0] - steps_before[0]) / max(steps_after[1] - steps_before[1], 1)
            b = asyncio.run(drive(f"http://127.0.0.1:{kaito_port}/chat", kaito_bodies, level,
                                  lambda r: args.tokens))
            c = measure_raw(model_dir, level, args.tokens, rounds=2)
            rows.append((level, a, b, c))
            print(f"concurrency {level:>2}: ours {a:8.1f} tok/s | kaito-style {b:8.1f} tok/s | "
                  f"raw generate {c:8.1f} tok/s | a/b {a / b:5.2f} | a/c {a / c:5.2f} | "
                  f"our mean decode batch {mean_batch:4.1f}", flush=True)
    finally:
        for proc in (ours, kaito):
            proc.terminate()
            proc.wait(timeout=30)
    print("\nconcurrency  ours(a)  kaito-style(b)  raw-generate(c)  a/b   a/c")
    for level, a, b, c in rows:
        print(f"{level:>11}  {a:7.1f}  {b:14.1f}  {c:15.1f}  {a / b:4.2f}  {a / c:4.2f}")


if __name__ == "__main__":
    main()
