"""Assembles the service from its settings, and runs its start and stop (snapshots, collections).

`build_embedder` only constructs (the caller loads a local model, with progress in the log);
`build_runtime` wires chunker, store factory, metrics, service and LLM client; `Runtime.start`
restores the latest snapshot (FAISS) or reopens the existing collections (Qdrant); `Runtime.stop`
writes a snapshot of every index (FAISS) and closes the clients. Start runs before the port opens
(a failure is a clear exit, see `__main__`); stop runs in the app's lifespan when the server is
asked to stop (SIGTERM), before uvicorn exits.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from kaito.runtime.rag import persistence
from kaito.runtime.rag.chunking import Chunker, build_sizing
from kaito.runtime.rag.embedding import Embedder, LocalEmbedder, RemoteEmbedder
from kaito.runtime.rag.llm import LLMClient
from kaito.runtime.rag.metrics import RagMetrics
from kaito.runtime.rag.service import RagService
from kaito.runtime.rag.settings import RagSettings

log = logging.getLogger("kaito.runtime.rag")


class StartupError(RuntimeError):
    """The service cannot start; the message names the setting at fault."""


def build_embedder(settings: RagSettings, transport: Any = None) -> Embedder:
    if settings.embedding_type == "remote":
        return RemoteEmbedder(settings.embedding_url or "", settings.embedding_secret,
                              settings.embedding_remote_model, settings.embed_batch_size, transport=transport)
    return LocalEmbedder(settings.embedding_model, settings.embed_batch_size, batch_tokens=settings.embed_batch_tokens,
                         threads=settings.embed_threads)


@dataclass(kw_only=True)
class Runtime:
    settings: RagSettings
    service: RagService
    metrics: RagMetrics
    llm: LLMClient | None
    qdrant: Any = None
    started: bool = False
    stopped: bool = False
    _closers: list[Any] = field(default_factory=list)

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        settings = self.settings
        if settings.vector_db == "qdrant":
            from kaito.runtime.rag import store_qdrant

            try:
                names = await store_qdrant.list_collections(self.qdrant)
            except Exception as exc:
                where = settings.vector_db_url or f"{settings.persist_dir}/qdrant"
                raise StartupError(f"VECTOR_DB_URL: cannot use Qdrant at {where}: {exc}") from None
            for name in names:
                self.service.indexes[name] = store_qdrant.QdrantStore(self.qdrant, name,
                                                                      self.service.embedder.model_id)
            if names:
                log.info("reopened %d Qdrant collections as indexes: %s", len(names), ", ".join(names))
            return
        if not settings.snapshots:
            return
        folder = persistence.latest_snapshot(settings.persist_dir)
        if folder is None:
            return
        log.info("restoring indexes from snapshot %s", folder)
        for name, path in persistence.snapshot_indexes(folder).items():
            try:
                dump = await asyncio.to_thread(persistence.read_dump, path)
                await self.service.restore(name, dump)
            except Exception as exc:  # one damaged index must not keep the others from loading
                log.error("could not restore index %r from %s: %s", name, path, exc)

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        try:
            if self.settings.vector_db == "faiss" and self.settings.snapshots and self.service.indexes:
                dumps = await self.service.dump_all()
                folder = await asyncio.to_thread(
                    persistence.write_snapshot, self.settings.persist_dir, dumps, self.settings.pod_name,
                    self.settings.pod_uid, self.settings.snapshots_kept)
                log.info("persisted %d indexes to snapshot %s", len(dumps), folder)
        finally:
            for close in self._closers:
                try:
                    await close()
                except Exception as exc:  # closing is best effort at exit
                    log.warning("while closing: %s", exc)


def build_runtime(settings: RagSettings, embedder: Embedder, llm_transport: Any = None) -> Runtime:
    """Wire the service; `embedder` must be loaded (a local model) so chunk sizes can be read."""
    metrics = RagMetrics()
    sizing = build_sizing(settings.chunk_size, settings.chunk_overlap, embedder.max_input_tokens())
    chunker = Chunker(sizing, embedder.chunk_tokenizer())
    qdrant = None
    if settings.vector_db == "qdrant":
        from kaito.runtime.rag import store_qdrant

        qdrant = store_qdrant.open_client(settings.vector_db_url, settings.vector_db_secret, settings.persist_dir)

        async def open_store(name: str, dimension: int, fresh: bool):
            return await store_qdrant.QdrantStore.create(qdrant, name, dimension, embedder.model_id, fresh)
    else:
        from kaito.runtime.rag.store_faiss import FaissStore

        async def open_store(name: str, dimension: int, fresh: bool):
            return FaissStore(dimension, embedder.model_id)

    service = RagService(embedder, chunker, open_store,
                         on_embed=lambda status, seconds: metrics.observe_embedding(embedder.mode, status, seconds))
    llm = LLMClient(settings.llm_url, settings.llm_secret, settings.llm_context_window, transport=llm_transport) \
        if settings.llm_url else None
    runtime = Runtime(settings=settings, service=service, metrics=metrics, llm=llm, qdrant=qdrant)
    runtime._closers.append(embedder.close)
    if llm is not None:
        runtime._closers.append(llm.close)
    if qdrant is not None:
        runtime._closers.append(qdrant.close)
    log.info("chunks of at most %d tokens (overlap %d); vector store %s; LLM %s", sizing.size, sizing.overlap,
             settings.vector_db, settings.llm_url or "none (retrieve-only)")
    return runtime
