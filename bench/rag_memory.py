"""Where the RAG service's memory goes (not a test): imports, the embedder, and what each remedy saves.

Each line runs in a fresh subprocess and prints its resident memory (VmRSS) and peak (VmHWM) from
/proc: first the import ladder (interpreter, numpy, torch, transformers, FAISS, the web stack, the
loaded embedder), then the embedder indexing `--chunks` chunks of the `bench/rag.py` corpus the way
the service does (one `embed_sync` per 100 documents), before and with each remedy:

  before          torch's default threads, 32 texts a batch whatever their length, no trim
  + threads_1     `torch.set_num_threads(1)` (RAG_EMBED_THREADS)
  + token_budget  at most 4,096 padded tokens a batch (RAG_EMBED_BATCH_TOKENS)
  + malloc_trim   glibc `malloc_trim(0)` after each embedding call (freed memory back to the OS)
  kaito           all three: the service's defaults
  kaito+arena2    and `MALLOC_ARENA_MAX=2` (fewer malloc arenas)
  kaito+no_mkldnn and `torch.backends.mkldnn.enabled = False` (no oneDNN kernel cache)
  kaito+low_mem   and `from_pretrained(low_cpu_mem_usage=True, torch_dtype=float32)`

    .venv/bin/python bench/rag_memory.py --chunks 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LADDER = [
    ("python", ""),
    ("+ numpy", "import numpy"),
    ("+ torch", "import numpy, torch"),
    ("+ transformers AutoModel", "import numpy, torch; from transformers import AutoModel, AutoTokenizer"),
    ("+ faiss", "import numpy, torch, faiss; from transformers import AutoModel, AutoTokenizer"),
    ("+ fastapi, uvicorn", "import numpy, torch, faiss, fastapi, uvicorn; from transformers import AutoModel"),
    ("the service's modules alone", "import kaito.runtime.rag.server, kaito.runtime.rag.app"),  # torch: at load
]
REMEDIES = ("before", "+ threads_1", "+ token_budget", "+ malloc_trim", "kaito", "kaito+arena2", "kaito+no_mkldnn",
            "kaito+low_mem")


def _rss() -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _child_import(code: str) -> dict:
    exec(code)  # noqa: S102 - the fixed import lines above
    rss, peak = _rss()
    return {"rss": rss, "peak": peak}


def _child_embed(model_dir: str, remedy: str, chunks: int) -> dict:
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT))
    from bench.rag import build_corpus

    from kaito.runtime.rag import embedding

    kaito = remedy.startswith("kaito")
    threads = 1 if kaito or remedy == "+ threads_1" else None
    budget = 4096 if kaito or remedy == "+ token_budget" else 10**9
    if not (kaito or remedy == "+ malloc_trim"):
        embedding.release_freed_memory = lambda: None
    if remedy == "kaito+no_mkldnn":
        torch.backends.mkldnn.enabled = False
    embedder = embedding.LocalEmbedder(model_dir, batch_size=32, batch_tokens=budget, threads=threads)
    if remedy == "kaito+low_mem":
        torch.set_num_threads(1)
        from transformers import AutoModel, AutoTokenizer

        embedder._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        embedder._model = AutoModel.from_pretrained(model_dir, low_cpu_mem_usage=True, torch_dtype=torch.float32).eval()
        embedder._torch = torch
    else:
        embedder.load()
    idle = _rss()[0]
    docs = build_corpus(chunks)
    started = time.perf_counter()
    for start in range(0, len(docs), 100):
        embedder.embed_sync(docs[start: start + 100])
    seconds = time.perf_counter() - started
    rss, peak = _rss()
    return {"idle": idle, "rss": rss, "peak": peak, "chunks_per_s": chunks / seconds}


def _run(args: list[str], env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--child-import", help=argparse.SUPPRESS)
    parser.add_argument("--child-embed", nargs=2, metavar=("MODEL_DIR", "REMEDY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import is not None:
        print(json.dumps(_child_import(args.child_import)))
        return 0
    if args.child_embed:
        print(json.dumps(_child_embed(args.child_embed[0], args.child_embed[1], args.chunks)))
        return 0
    sys.path.insert(0, str(ROOT))
    from tests.support.tiny_embedder import build_tiny_embedder

    print("import ladder (fresh process each):")
    for name, code in LADDER:
        r = _run(["--child-import", code])
        print(f"  {name:28} rss {r['rss']:6.0f} MiB")
    with tempfile.TemporaryDirectory(prefix="kaito-bench-ragmem-") as tmp:
        model = build_tiny_embedder(Path(tmp) / "hf", hidden_size=64, layers=2)
        print(f"embedding {args.chunks} chunks (tiny BERT, hidden 64), one call per 100 documents:")
        for remedy in REMEDIES:
            env = {"MALLOC_ARENA_MAX": "2"} if remedy == "kaito+arena2" else None
            r = _run(["--child-embed", str(model.path), remedy, "--chunks", str(args.chunks)], env)
            print(f"  {remedy:16} idle {r['idle']:6.0f} MiB  after {r['rss']:6.0f} MiB  peak {r['peak']:6.0f} MiB  "
                  f"{r['chunks_per_s']:7.0f} chunks/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
