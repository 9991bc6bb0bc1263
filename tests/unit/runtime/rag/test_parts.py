"""The RAG service's pure parts: the env contract, BM25 scoring, the fusion, chunking, remote embedding."""

from __future__ import annotations

import json
import math

import httpx
import numpy as np
import pytest

from kaito.runtime.rag import bm25
from kaito.runtime.rag.retrieval import RRF_K, fuse
from kaito.runtime.rag.settings import SettingsError, build_settings
from kaito.runtime.rag.store import Found


def test_settings_read_what_the_controller_sets():
    env = {"EMBEDDING_TYPE": "remote", "REMOTE_EMBEDDING_URL": "http://emb:80/embed",
           "REMOTE_EMBEDDING_ACCESS_SECRET": "k1", "VECTOR_DB_TYPE": "Qdrant", "VECTOR_DB_URL": "http://q:6333",
           "VECTOR_DB_ACCESS_SECRET": "k2", "LLM_INFERENCE_URL": "http://ws/v1/chat/completions",
           "LLM_ACCESS_SECRET": "k3", "LLM_CONTEXT_WINDOW": "4096", "DEFAULT_VECTOR_DB_PERSIST_DIR": "/mnt/data/r"}
    s = build_settings([], env)
    assert (s.embedding_type, s.embedding_url, s.embedding_secret) == ("remote", "http://emb:80/embed", "k1")
    assert (s.vector_db, s.vector_db_url, s.vector_db_secret) == ("qdrant", "http://q:6333", "k2")
    assert (s.llm_url, s.llm_secret, s.llm_context_window) == ("http://ws/v1/chat/completions", "k3", 4096)
    assert str(s.persist_dir) == "/mnt/data/r"
    local = build_settings([], {"MODEL_ID": "org/embedder"})
    assert (local.embedding_type, local.embedding_model) == ("local", "org/embedder")
    kaito_names = build_settings([], {"EMBEDDING_SOURCE_TYPE": "local", "LOCAL_EMBEDDING_MODEL_ID": "a/b"})
    assert kaito_names.embedding_model == "a/b"
    assert build_settings(["--vector-db", "faiss"], {"VECTOR_DB_TYPE": "qdrant"}).vector_db == "faiss"


@pytest.mark.parametrize(("argv", "env", "named"), [
    ([], {"VECTOR_DB_TYPE": "milvus"}, "VECTOR_DB_TYPE: unsupported vector DB engine 'milvus'"),
    (["--vector-db", "chroma"], {}, "--vector-db: unsupported vector DB engine"),
    ([], {"EMBEDDING_TYPE": "remote"}, "REMOTE_EMBEDDING_URL: required"),
    ([], {"LLM_INFERENCE_URL": "workspace-a"}, "LLM_INFERENCE_URL: not an http(s) URL"),
    ([], {"LLM_CONTEXT_WINDOW": "0"}, "LLM_CONTEXT_WINDOW:"),
    ([], {"RAG_CHUNK_SIZE": "100", "RAG_CHUNK_OVERLAP": "100"}, "RAG_CHUNK_OVERLAP"),
    ([], {"RAG_SNAPSHOTS": "maybe"}, "RAG_SNAPSHOTS: expected true or false"),
])
def test_bad_settings_name_the_variable(argv, env, named):
    with pytest.raises(SettingsError) as caught:
        build_settings(argv, env)
    assert named in str(caught.value)


def _bm25_by_hand(docs: list[str], query: str) -> list[float]:
    tokens = [bm25.tokenize(d) for d in docs]
    avg = sum(map(len, tokens)) / len(tokens)
    scores = []
    for doc in tokens:
        total = 0.0
        for term in set(bm25.tokenize(query)):
            df = sum(term in t for t in tokens)
            tf = doc.count(term)
            if tf:
                idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
                total += idf * tf * (bm25.K1 + 1) / (tf + bm25.K1 * (1 - bm25.B + bm25.B * len(doc) / avg))
        scores.append(total)
    return scores


def test_incremental_bm25_equals_okapi_bm25_after_adds_and_removes():
    docs = ["the fox runs fast", "a lazy dog sleeps", "fox and dog play together", "cats ignore the fox fox",
            "nothing relevant here", "dog dog dog barking"]
    index = bm25.BM25Index()
    index.add([0, 1, 2], docs[:3])
    index.add([3, 4, 5], docs[3:])
    index.remove([1])
    live = [0, 2, 3, 4, 5]
    expected = _bm25_by_hand([docs[i] for i in live], "fox dog")
    got = dict(index.search("fox dog", 10))
    for i, score in zip(live, expected, strict=True):
        assert got.get(i, 0.0) == pytest.approx(score, rel=1e-5)
    assert [i for i, _ in index.search("fox dog", 2)] == [i for _, i in sorted(zip(expected, live, strict=False), reverse=True)][:2]
    assert dict(index.search("fox", 10, allowed=np.array([3, 4]))) .keys() == {3}
    assert index.search("unknownword", 5) == []


def test_bm25_compacts_removed_postings():
    index = bm25.BM25Index()
    index.add(list(range(3000)), [f"word{i % 7} common" for i in range(3000)])
    index.remove(range(2500))
    assert len(index) == 500 and index._n_dead == 0
    assert {i for i, _ in index.search("common", 1000)} == set(range(2500, 3000))


def _found(node: str, score: float) -> Found:
    return Found(node_id=node, doc_id=node, text=node, metadata={}, score=score)


def test_fusion_is_normalised_reciprocal_rank_and_orders_by_it():
    dense = [_found("a", 0.9), _found("b", 0.8), _found("c", 0.1)]
    sparse = [_found("c", 7.0), _found("a", 3.0), _found("d", 1.0)]
    fused = fuse(dense, sparse, 10)
    best = 2 / (RRF_K + 1)
    expected = {"a": (1 / 61 + 1 / 62) / best, "b": (1 / 62) / best, "c": (1 / 63 + 1 / 61) / best, "d": (1 / 63) / best}
    assert [f.node_id for f in fused] == sorted(expected, key=lambda n: -expected[n])
    for f in fused:
        assert f.score == pytest.approx(expected[f.node_id])
    by_id = {f.node_id: f for f in fused}
    assert (by_id["a"].source, by_id["a"].dense_score, by_id["a"].sparse_score) == ("both", 0.9, 3.0)
    assert (by_id["b"].source, by_id["d"].source) == ("dense_only", "sparse_only")
    assert fuse([_found("x", 1.0)], [_found("x", 2.0)], 1)[0].score == pytest.approx(1.0)
    assert len(fuse(dense, sparse, 2)) == 2


def test_chunking_by_sentences_and_by_syntax():
    from kaito.runtime.rag.chunking import Chunker, ChunkSizing, build_sizing
    from kaito.runtime.rag.errors import RagError

    assert build_sizing(None, None, 510) == ChunkSizing(size=510, overlap=102)
    assert build_sizing(None, None, None) == ChunkSizing(size=1024, overlap=200)
    chunker = Chunker(ChunkSizing(size=12, overlap=0))
    prose = "First sentence is here. Second one follows it. Third closes the text."
    chunks = chunker.split(prose, {})
    assert len(chunks) > 1 and all(c.rstrip().endswith(".") for c in chunks)
    code = "def alpha():\n    return 1\n\n\ndef beta():\n    return 2\n"
    pieces = chunker.split(code, {"split_type": "code", "language": "Python"})
    assert pieces == ["def alpha():\n    return 1", "def beta():\n    return 2"]
    for meta, message in (({"split_type": "code"}, "required"), ({"split_type": "code", "language": "cobol"}, "cobol")):
        with pytest.raises(RagError, match=message):
            chunker.check(meta)


async def test_remote_embedder_batches_falls_back_and_speaks_openai():
    from kaito.runtime.rag.embedding import RemoteEmbedder

    seen = []

    def tei_single_only(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if isinstance(body["inputs"], list):
            return httpx.Response(422, json={"error": "inputs must be a string"})
        return httpx.Response(200, json=[[float(len(body["inputs"])), 1.0]])

    embedder = RemoteEmbedder("http://emb/embed", "tok", transport=httpx.MockTransport(tei_single_only))
    rows = await embedder.embed(["ab", "abcd"])
    assert rows.shape == (2, 2) and np.allclose(np.linalg.norm(rows, axis=1), 1.0)
    assert rows[1][0] > rows[0][0]
    await embedder.embed(["x"])
    assert [type(b["inputs"]).__name__ for b in seen] == ["list", "str", "str", "str"]  # batch tried once

    def openai(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["model"] == "e5" and request.headers["authorization"] == "Bearer tok"
        return httpx.Response(200, json={"data": [{"index": i, "embedding": [1.0, float(i)]}
                                                  for i in reversed(range(len(body["input"])))]})

    oai = RemoteEmbedder("http://emb/v1/embeddings", "tok", model="e5", transport=httpx.MockTransport(openai))
    assert (await oai.embed(["a", "b", "c"])).shape == (3, 2) and await oai.dimension() == 2


async def test_unreachable_remote_embedder_is_a_502_naming_the_url():
    from kaito.runtime.rag.embedding import RemoteEmbedder
    from kaito.runtime.rag.errors import Upstream

    def refuse(request):
        raise httpx.ConnectError("refused")

    embedder = RemoteEmbedder("http://emb/embed", transport=httpx.MockTransport(refuse))
    with pytest.raises(Upstream, match="http://emb/embed unreachable") as caught:
        await embedder.embed(["x"])
    assert caught.value.status == 502


def test_embedding_batches_hold_a_bounded_number_of_padded_tokens():
    from kaito.runtime.rag.embedding import plan_batches

    lengths = [10, 500, 30, 64, 70, 12, 200]
    batches = plan_batches(lengths, batch_size=32, batch_tokens=256, multiple=64)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:  # shortest first; each within the budget once padded, or alone
        longest = -(-max(lengths[i] for i in batch) // 64) * 64
        assert len(batch) == 1 or len(batch) * longest <= 256
    assert batches[0] == [0, 5, 2, 3]  # 4 texts of ≤ 64 tokens: 256 padded tokens
    assert batches[-1] == [1]  # longer than the budget: alone
    assert [len(b) for b in plan_batches([5] * 100, batch_size=32, batch_tokens=10_000)] == [32, 32, 32, 4]
