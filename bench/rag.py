"""RAG benchmark (not a test): our service vs a LlamaIndex + FAISS pipeline built as KAITO v0.12's is.

For each side, documents are indexed in batches of 100 (one chunk each) up to `--chunks`, and it reports
  * indexing throughput (chunks/s) for the first 1,000 chunks and for the last 1,000 (no slowdown?),
  * `/retrieve` top-5 latency p50/p99 at 1,000 chunks and at the end,
  * peak memory (the process's max RSS) and RSS at idle (after start, before indexing),
and the ratios ours/peer. Both sides embed with the same tiny random BERT (built offline here) and
the same mean-pooling code, so the numbers compare the pipelines, not the models; the peer runs
torch's default number of threads (as KAITO's HuggingFaceEmbedding does), ours its own default (1:
`RAG_EMBED_THREADS`, measured in `bench/rag_memory.py`).

  ours: `python -m kaito.runtime.rag` in a subprocess, driven over HTTP (POST /index, POST /retrieve).
  peer: in a subprocess, no HTTP: `VectorStoreIndex.from_documents` over `FaissMapVectorStore(IndexIDMap(
        IndexFlatL2))` with LlamaIndex's default `SentenceSplitter` for the first batch, `index.insert`
        per document after (KAITO's append path), and KAITO's hybrid retrieval: 3 × top-k from the vector
        retriever and from a `BM25Retriever` rebuilt from the docstore for every query, fused as
        0.7 × vector score + 0.3 / (1 + BM25 rank).

The peer needs packages outside our profiles; the script installs nothing and prints the pip command.
    .venv/bin/python bench/rag.py                  # 10,000 chunks
    .venv/bin/python bench/rag.py --chunks 5000 --queries 50
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER_PACKAGES = "llama-index-core llama-index-vector-stores-faiss llama-index-retrievers-bm25"
BATCH = 100
TOP_K = 5


def _rss_mib(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def build_corpus(n: int, seed: int = 0) -> list[str]:
    """`n` distinct documents of ~60 words from a 5,000-word vocabulary (each one chunk on both sides)."""
    rng = random.Random(seed)
    syllables = ["ka", "to", "ri", "mu", "sen", "lo", "pa", "vi", "dor", "el", "qua", "zin", "tor", "ba", "ne"]
    vocab = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(8000)})[:5000]
    docs = []
    for i in range(n):
        words = rng.choices(vocab, k=60)
        docs.append(f"Document {i}. " + ". ".join(" ".join(words[j: j + 12]) for j in range(0, 60, 12)) + ".")
    return docs


def build_queries(docs: list[str], n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(docs).split()[3:9]) for _ in range(n)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(index_batch, retrieve, docs: list[str], queries: list[str], rss) -> dict:
    """Drive one side: index in batches, time each 1,000, query at 1,000 and at the end."""
    result = {"idle_rss_mib": rss()[0], "segments": [], "retrieve": {}}
    started = time.perf_counter()
    for start in range(0, len(docs), BATCH):
        index_batch(docs[start: start + BATCH])
        done = start + BATCH
        if done % 1000 == 0:
            now = time.perf_counter()
            result["segments"].append(1000 / (now - started))
            print(f"    {done:>6} chunks: {result['segments'][-1]:8.1f} chunks/s", file=sys.stderr, flush=True)
            started = now
        if done in (1000, len(docs)):
            latencies = []
            for query in queries:
                t0 = time.perf_counter()
                retrieve(query)
                latencies.append((time.perf_counter() - t0) * 1000)
            result["retrieve"][done] = (percentile(latencies, 0.5), percentile(latencies, 0.99))
            started = time.perf_counter()  # queries are not indexing time
    result["rss_mib"], result["peak_rss_mib"] = rss()
    return result


# --- peer: KAITO's pipeline in LlamaIndex ---------------------------------------------------------------
def run_peer(model_dir: str, n_chunks: int, n_queries: int) -> dict:
    import faiss
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.retrievers.bm25 import BM25Retriever
    from llama_index.vector_stores.faiss import FaissMapVectorStore

    sys.path.insert(0, str(ROOT / "src"))
    from kaito.runtime.rag.embedding import LocalEmbedder

    ours = LocalEmbedder(model_dir, threads=None)  # torch's default threads, as KAITO's HuggingFaceEmbedding runs
    ours.load()

    class SameEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query):
            return ours.embed_sync([query])[0].tolist()

        def _get_text_embedding(self, text):
            return ours.embed_sync([text])[0].tolist()

        def _get_text_embeddings(self, texts):
            return ours.embed_sync(texts).tolist()

        async def _aget_query_embedding(self, query):
            return self._get_query_embedding(query)

    embed = SameEmbedding(embed_batch_size=10)
    state: dict = {}

    def index_batch(texts: list[str]) -> None:
        docs = [Document(text=t) for t in texts]
        if "index" not in state:
            store = FaissMapVectorStore(faiss_index=faiss.IndexIDMap(faiss.IndexFlatL2(ours._dim())))
            state["index"] = VectorStoreIndex.from_documents(
                docs, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed,
                transformations=[SentenceSplitter()])
        else:
            for doc in docs:
                state["index"].insert(doc)

    def retrieve(query: str) -> list:
        index, pool = state["index"], TOP_K * 3
        vector = index.as_retriever(similarity_top_k=pool).retrieve(query)
        keyword = BM25Retriever.from_defaults(docstore=index.docstore, similarity_top_k=pool).retrieve(query)
        scores = {n.node.node_id: 0.7 * (n.score or 0.0) for n in vector}
        for rank, n in enumerate(keyword):
            scores[n.node.node_id] = scores.get(n.node.node_id, 0.0) + 0.3 / (1 + rank)
        return sorted(scores.items(), key=lambda kv: -kv[1])[:TOP_K]

    docs = build_corpus(n_chunks)
    return measure(index_batch, retrieve, docs, build_queries(docs, n_queries), lambda: _rss_mib())


# --- ours: the service over HTTP ------------------------------------------------------------------------
def run_ours(model_dir: str, n_chunks: int, n_queries: int, storage: Path) -> dict:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MODEL_ID": model_dir, "DEFAULT_VECTOR_DB_PERSIST_DIR": str(storage), "RAG_SNAPSHOTS": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "kaito.runtime.rag", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        client = httpx.Client(base_url=base, timeout=600)
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("our RAG service did not start") from None
                time.sleep(0.2)

        def index_batch(texts: list[str]) -> None:
            r = client.post("/index", json={"index_name": "bench", "documents": [{"text": t} for t in texts]})
            r.raise_for_status()

        def retrieve(query: str) -> None:
            client.post("/retrieve", json={"index_name": "bench", "query": query, "max_node_count": TOP_K}
                        ).raise_for_status()

        docs = build_corpus(n_chunks)
        return measure(index_batch, retrieve, docs, build_queries(docs, n_queries), lambda: _rss_mib(proc.pid))
    finally:
        proc.terminate()
        proc.wait(30)


def _report(name: str, r: dict, n: int) -> None:
    seg = r["segments"]
    print(f"{name:5} index: first 1k {seg[0]:8.1f} chunks/s, last 1k {seg[-1]:8.1f} chunks/s "
          f"(last/first {seg[-1] / seg[0]:.2f})")
    for at, (p50, p99) in r["retrieve"].items():
        print(f"{name:5} /retrieve top-{TOP_K} at {int(at):>6} chunks: p50 {p50:8.2f} ms  p99 {p99:8.2f} ms")
    print(f"{name:5} memory: idle {r['idle_rss_mib']:.0f} MiB, peak {r['peak_rss_mib']:.0f} MiB at {n} chunks")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--peer", metavar="MODEL_DIR", help=argparse.SUPPRESS)  # the peer's subprocess
    args = parser.parse_args()
    if args.chunks < 1000 or args.chunks % 1000:
        parser.error("--chunks must be a multiple of 1000")
    if args.peer:
        print(json.dumps(run_peer(args.peer, args.chunks, args.queries)))
        return 0
    try:
        import llama_index.core  # noqa: F401
        import llama_index.retrievers.bm25  # noqa: F401
        import llama_index.vector_stores.faiss  # noqa: F401
    except ImportError:
        print(f"the peer needs LlamaIndex; install it with:\n  {sys.executable} -m pip install {PEER_PACKAGES}",
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from tests.support.tiny_embedder import build_tiny_embedder

    with tempfile.TemporaryDirectory(prefix="kaito-bench-rag-") as tmp:
        model = build_tiny_embedder(Path(tmp) / "hf", hidden_size=64, layers=2)
        print(f"tiny BERT embedder (hidden 64, 2 layers) at {model.path}; {args.chunks} chunks, "
              f"batches of {BATCH}, {args.queries} queries", file=sys.stderr)
        print("  ours:", file=sys.stderr)
        ours = run_ours(str(model.path), args.chunks, args.queries, Path(tmp) / "storage")
        print("  peer (LlamaIndex as KAITO):", file=sys.stderr)
        out = subprocess.run([sys.executable, __file__, "--peer", str(model.path), "--chunks", str(args.chunks),
                              "--queries", str(args.queries)], capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        sys.stderr.write(out.stderr[-2000:])
        peer = json.loads(out.stdout.strip().splitlines()[-1])
        peer["retrieve"] = {int(k): v for k, v in peer["retrieve"].items()}
    _report("ours", ours, args.chunks)
    _report("peer", peer, args.chunks)
    n = args.chunks
    print(f"ratio indexing (last 1k): ours/peer {ours['segments'][-1] / peer['segments'][-1]:.1f}x")
    for at in (1000, n):
        print(f"ratio /retrieve p50 at {at}: ours/peer {ours['retrieve'][at][0] / peer['retrieve'][at][0]:.3f}")
    print(f"ratio peak memory: ours/peer {ours['peak_rss_mib'] / peer['peak_rss_mib']:.2f}; "
          f"idle {ours['idle_rss_mib'] / peer['idle_rss_mib']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
