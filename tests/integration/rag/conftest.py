"""RAG service fixtures: the tiny embedder (built once), a service factory, a fake OpenAI LLM.

`make_rag(**settings)` builds the real app (real transformers embedder, real FAISS or Qdrant
local mode, real persistence) and drives it in-process over httpx's ASGI transport; start and
stop (snapshots) run as the lifespan would. The LLM side is `FakeLLM`, an OpenAI-style endpoint
on an `httpx.MockTransport` that records what it was sent; `test_with_model_server.py` uses our
real model server instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

pytest.importorskip("faiss")
pytest.importorskip("transformers")

from kaito.runtime.rag.app import create_app  # noqa: E402
from kaito.runtime.rag.embedding import LocalEmbedder  # noqa: E402
from kaito.runtime.rag.server import build_runtime  # noqa: E402
from kaito.runtime.rag.settings import RagSettings  # noqa: E402


@pytest.fixture(scope="session")
def tiny_embedder():
    from tests.support.tiny_embedder import build_tiny_embedder

    return build_tiny_embedder(Path(os.environ["HF_HUB_CACHE"]))


@pytest.fixture(scope="session")
def loaded_embedder(tiny_embedder):
    embedder = LocalEmbedder(tiny_embedder.repo_id, batch_size=16)
    embedder.load()
    return embedder


class FakeLLM:
    """An OpenAI-style server in a transport: answers chat, completions, models; records requests."""

    def __init__(self, answer: str = "fake answer", fail_with: int | None = None) -> None:
        self.answer = answer
        self.fail_with = fail_with
        self.requests: list[tuple[str, dict]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "served-model", "object": "model"}]})
        body = json.loads(request.content or b"{}")
        self.requests.append((request.url.path, body))
        self.last_headers = dict(request.headers)
        if self.fail_with:
            return httpx.Response(self.fail_with, json={"error": {"message": "upstream says no"}})
        if body.get("stream"):
            chunks = [{"choices": [{"index": 0, "delta": {"content": word}}]} for word in self.answer.split()]
            text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return httpx.Response(200, content=text.encode(), headers={"content-type": "text/event-stream"})
        if request.url.path.endswith("/chat/completions"):
            choice = {"index": 0, "message": {"role": "assistant", "content": self.answer}, "finish_reason": "stop"}
        else:
            choice = {"index": 0, "text": self.answer, "finish_reason": "length"}
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "created": 0,
                                         "model": body.get("model"), "choices": [choice],
                                         "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


class Rag:
    """One service instance and a client for it."""

    def __init__(self, settings: RagSettings, embedder, llm_transport=None) -> None:
        self.settings = settings
        self.runtime = build_runtime(settings, embedder, llm_transport=llm_transport)
        self.app = create_app(self.runtime)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://rag",
                                        timeout=60)

    async def start(self) -> Rag:
        await self.runtime.start()
        return self

    async def stop(self) -> None:
        await self.client.aclose()
        await self.runtime.stop()

    async def index(self, name: str, *docs: str | dict, status: int = 200):
        documents = [d if isinstance(d, dict) else {"text": d} for d in docs]
        response = await self.client.post("/index", json={"index_name": name, "documents": documents})
        assert response.status_code == status, response.text
        return response.json()

    async def retrieve(self, name: str, query: str, **extra):
        response = await self.client.post("/retrieve", json={"index_name": name, "query": query, **extra})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def make_rag(loaded_embedder, tmp_path):
    made: list[Rag] = []

    async def factory(embedder=None, llm_transport=None, **overrides) -> Rag:
        values = {"persist_dir": tmp_path / "storage", "embedding_model": loaded_embedder.model_id, **overrides}
        rag = Rag(RagSettings(**values), embedder or loaded_embedder, llm_transport)
        made.append(rag)
        return await rag.start()

    yield factory


CORPUS = [
    ("Kubernetes operators reconcile custom resources until the cluster matches the spec.", {"topic": "k8s"}),
    ("The quick brown fox jumps over the lazy dog near the riverbank.", {"topic": "animals"}),
    ("FAISS performs efficient similarity search over dense vectors.", {"topic": "search"}),
    ("BM25 ranks documents by keyword frequency and inverse document frequency.", {"topic": "search"}),
    ("Tomatoes, basil and mozzarella make a classic Italian salad.", {"topic": "food"}),
    ("Retrieval augmented generation grounds language model answers in documents.", {"topic": "rag"}),
]


def corpus_docs() -> list[dict]:
    return [{"text": text, "metadata": meta} for text, meta in CORPUS]
