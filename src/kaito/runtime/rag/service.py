"""The RAG operations behind the routes: indexes by name, documents in and out, retrieval, persistence.

Indexing splits and embeds outside any lock (worker threads), then commits under the index's
lock, checking again for documents that arrived meanwhile; so appends to a large index cost only
the new chunks. `doc_id` is sha256(text), as in KAITO, so a text already indexed is skipped.
Every error is a `RagError` carrying its HTTP status; the app maps it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from kaito.runtime.rag import persistence
from kaito.runtime.rag.chunking import Chunker
from kaito.runtime.rag.embedding import Embedder
from kaito.runtime.rag.errors import Conflict, IndexNotFound, RagError
from kaito.runtime.rag.retrieval import POOL_FACTOR, Fused, fuse
from kaito.runtime.rag.store import Chunk, DocRecord, IndexDump, IndexStore, build_node_id

log = logging.getLogger("kaito.runtime.rag")
# (index name, dimension, fresh) -> a new store for it
StoreFactory = Callable[[str, int, bool], Awaitable[IndexStore]]
LOG_INDEXING_FROM = 500  # chunks; smaller requests index quietly


def build_doc_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RagService:
    def __init__(self, embedder: Embedder, chunker: Chunker, open_store: StoreFactory,
                 on_embed: Callable[[str, float], None] | None = None) -> None:
        self.embedder = embedder
        self.chunker = chunker
        self._open_store = open_store
        self._on_embed = on_embed or (lambda status, seconds: None)
        self.indexes: dict[str, IndexStore] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def store(self, name: str) -> IndexStore:
        try:
            return self.indexes[name]
        except KeyError:
            raise IndexNotFound(name) from None

    async def embed(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            vectors = await self.embedder.embed(texts)
        except Exception:
            self._on_embed("failure", time.perf_counter() - started)
            raise
        self._on_embed("success", time.perf_counter() - started)
        return vectors

    async def _prepare(self, documents: list[DocRecord]) -> tuple[list[list[Chunk]], np.ndarray]:
        def split_all() -> list[list[Chunk]]:
            return [[Chunk(node_id=build_node_id(d.doc_id, i, text), doc_id=d.doc_id, text=text)
                     for i, text in enumerate(self.chunker.split(d.text, d.metadata))] for d in documents]

        chunks = await asyncio.to_thread(split_all)
        texts = [c.text for doc_chunks in chunks for c in doc_chunks]
        loud = len(texts) >= LOG_INDEXING_FROM
        if loud:
            log.info("indexing %d documents: %d chunks to embed", len(documents), len(texts))
        vectors = await self.embed(texts) if texts else np.empty((0, 0), dtype=np.float32)
        return chunks, vectors

    def _validate(self, documents: list[Any]) -> None:
        for i, doc in enumerate(documents):
            if not doc.text.strip():
                raise RagError(f"documents[{i}].text: empty")
            try:
                self.chunker.check(doc.metadata or {})
            except RagError as exc:
                raise RagError(f"documents[{i}].{exc}") from None

    async def _ensure(self, name: str) -> IndexStore:
        if name not in self.indexes:
            self.indexes[name] = await self._open_store(name, await self.embedder.dimension(), False)
        return self.indexes[name]

    async def index(self, name: str, documents: list[Any]) -> list[str]:
        """Add documents (creating the index); returns each one's doc_id, skipped duplicates included."""
        self._validate(documents)
        records: dict[str, DocRecord] = {}
        ids = []
        for doc in documents:
            doc_id = build_doc_id(doc.text)
            ids.append(doc_id)
            records.setdefault(doc_id, DocRecord(doc_id=doc_id, text=doc.text, metadata=dict(doc.metadata or {})))
        known = await self.indexes[name].has_documents(list(records)) if name in self.indexes else set()
        fresh = [r for doc_id, r in records.items() if doc_id not in known]
        if not fresh:
            async with self._lock(name):
                await self._ensure(name)
            return ids
        started = time.monotonic()
        chunks, vectors = await self._prepare(fresh)
        async with self._lock(name):
            store = await self._ensure(name)
            arrived = await store.has_documents([r.doc_id for r in fresh])
            keep = [i for i, r in enumerate(fresh) if r.doc_id not in arrived]
            rows = _rows_of(chunks, keep)
            await store.add([fresh[i] for i in keep], [chunks[i] for i in keep], vectors[rows])
        n_chunks = len(rows)
        if n_chunks >= LOG_INDEXING_FROM:
            log.info("indexed %d chunks into %r in %.1fs", n_chunks, name, time.monotonic() - started)
        return ids

    async def update(self, name: str, documents: list[Any]) -> dict[str, list[Any]]:
        store = self.store(name)
        self._validate(documents)
        current = await store.get_documents([d.doc_id for d in documents])
        updated, unchanged, not_found = [], [], []
        for doc in documents:
            old = current.get(doc.doc_id)
            if old is None:
                not_found.append(doc)
            elif old.text == doc.text and old.metadata == (doc.metadata or {}):
                unchanged.append(doc)
            else:
                updated.append(doc)
        if updated:
            records = [DocRecord(doc_id=d.doc_id, text=d.text, metadata=dict(d.metadata or {})) for d in updated]
            chunks, vectors = await self._prepare(records)
            async with self._lock(name):
                await self.store(name).add(records, chunks, vectors)
        return {"updated_documents": updated, "unchanged_documents": unchanged, "not_found_documents": not_found}

    async def delete_documents(self, name: str, doc_ids: list[str]) -> dict[str, list[str]]:
        store = self.store(name)
        async with self._lock(name):
            present = await store.has_documents(doc_ids)
            await store.delete([d for d in doc_ids if d in present])
        return {"deleted_doc_ids": [d for d in doc_ids if d in present],
                "not_found_doc_ids": [d for d in doc_ids if d not in present]}

    async def list_documents(self, name: str, limit: int, offset: int, max_text_length: int | None,
                             metadata_filter: dict[str, Any] | None) -> dict[str, Any]:
        docs, total = await self.store(name).list_documents(offset, limit, metadata_filter)
        listed = []
        for doc in docs:
            cut = bool(max_text_length and len(doc.text) > max_text_length)
            listed.append({"doc_id": doc.doc_id, "text": doc.text[:max_text_length] if cut else doc.text,
                           "hash_value": None, "metadata": doc.metadata, "is_truncated": cut})
        return {"documents": listed, "count": len(listed), "total_items": total}

    async def delete_index(self, name: str) -> None:
        store = self.store(name)
        async with self._lock(name):
            del self.indexes[name]
            await store.drop()

    async def retrieve(self, name: str, query: str, top_k: int, metadata_filter: dict[str, Any] | None
                       ) -> tuple[list[Fused], dict[str, int]]:
        store = self.store(name)
        if not query.strip():
            raise RagError("Query string cannot be empty.")
        pool = top_k * POOL_FACTOR
        [vector] = await self.embed([query])
        dense = await store.search_dense(vector, pool, metadata_filter)
        sparse = await store.search_sparse(query, pool, metadata_filter)
        return fuse(dense, sparse, top_k), {"dense": len(dense), "sparse": len(sparse)}

    # --- persistence --------------------------------------------------------------------------
    async def persist(self, name: str, path: Path) -> None:
        store = self.store(name)
        async with self._lock(name):
            dump = await store.dump()
        await asyncio.to_thread(persistence.write_dump, dump, path)

    async def load(self, name: str, path: Path, overwrite: bool) -> None:
        if not Path(path).exists():
            raise RagError(f"Path does not exist: {path}", status=404)
        if name in self.indexes and not overwrite:
            raise Conflict(f"Index '{name}' already exists. Use a different name, overwrite=true, "
                           "or delete the existing index first.")
        dump = await asyncio.to_thread(persistence.read_dump, Path(path))
        await self.restore(name, dump)

    async def restore(self, name: str, dump: IndexDump) -> None:
        vectors = dump.vectors
        if dump.chunks and (dump.embedding_model != self.embedder.model_id
                            or vectors.shape[1] != await self.embedder.dimension()):
            log.info("index %r was embedded with %s; embedding its %d chunks again with %s", name,
                     dump.embedding_model or "an unknown model", len(dump.chunks), self.embedder.model_id)
            vectors = await self.embed([c.text for c in dump.chunks])
        by_doc: dict[str, list[Chunk]] = {}
        for chunk in dump.chunks:
            by_doc.setdefault(chunk.doc_id, []).append(chunk)
        async with self._lock(name):
            store = await self._open_store(name, await self.embedder.dimension(), True)
            docs = [d for d in dump.documents if d.doc_id in by_doc]
            # rows follow chunks grouped by document in dump order; regroup them to match `docs`
            row_of = {c.node_id: i for i, c in enumerate(dump.chunks)}
            ordered = [by_doc[d.doc_id] for d in docs]
            rows = [row_of[c.node_id] for doc_chunks in ordered for c in doc_chunks]
            await store.add(docs, ordered, vectors[rows] if rows else vectors)
            old = self.indexes.get(name)
            self.indexes[name] = store
            if old is not None and old is not store:
                await old.drop()
        log.info("loaded index %r: %d documents, %d chunks", name, len(docs), len(dump.chunks))

    async def dump_all(self) -> dict[str, IndexDump]:
        dumps = {}
        for name in list(self.indexes):
            async with self._lock(name):
                if name in self.indexes:
                    dumps[name] = await self.indexes[name].dump()
        return dumps


def _rows_of(chunks: list[list[Chunk]], keep: list[int]) -> list[int]:
    starts, total = [], 0
    for doc_chunks in chunks:
        starts.append(total)
        total += len(doc_chunks)
    return [starts[i] + j for i in keep for j in range(len(chunks[i]))]
