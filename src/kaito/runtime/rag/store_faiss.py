"""The default store: everything in this process (FAISS for vectors, BM25 postings, documents in dicts).

Vectors live in `IndexIDMap2(IndexFlatIP)`: unit vectors, so the inner product FAISS returns is the
cosine similarity (higher is better) — KAITO's `IndexFlatL2` returns squared distances (lower is
better) and then fuses and thresholds them as if they were similarities. Each chunk gets an
integer id that is never reused; FAISS and BM25 both key by it. Appends add rows (no index is
rebuilt or re-serialised); a metadata filter becomes an `IDSelectorBatch` over the chunks of the
documents that match, found through an inverted (key, value) → documents map.

All methods run on the event loop's thread (they are quick: embedding and splitting happen before,
in worker threads), so no lock is needed inside.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kaito.runtime.rag import bm25
from kaito.runtime.rag.store import Chunk, DocRecord, Found, IndexDump, canonical_value


class FaissStore:
    def __init__(self, dimension: int, embedding_model: str) -> None:
        import faiss

        self._faiss = faiss
        self.dimension = dimension
        self.embedding_model = embedding_model
        self._vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._bm25 = bm25.BM25Index()
        self._docs: dict[str, DocRecord] = {}  # insertion order = listing order
        self._doc_chunks: dict[str, list[int]] = {}
        self._chunks: dict[int, Chunk] = {}
        self._by_meta: dict[tuple[str, str], set[str]] = {}
        self._next_id = 0

    async def count_documents(self) -> int:
        return len(self._docs)

    async def has_documents(self, doc_ids: list[str]) -> set[str]:
        return {d for d in doc_ids if d in self._docs}

    async def get_documents(self, doc_ids: list[str]) -> dict[str, DocRecord]:
        return {d: self._docs[d] for d in doc_ids if d in self._docs}

    async def add(self, documents: list[DocRecord], chunks: list[list[Chunk]], vectors: np.ndarray) -> None:
        replaced = [d.doc_id for d in documents if d.doc_id in self._docs]
        if replaced:
            await self.delete(replaced)
        ids: list[int] = []
        texts: list[str] = []
        for doc, doc_chunks in zip(documents, chunks, strict=True):
            self._docs[doc.doc_id] = doc
            for key, value in doc.metadata.items():
                self._by_meta.setdefault((key, canonical_value(value)), set()).add(doc.doc_id)
            chunk_ids = list(range(self._next_id, self._next_id + len(doc_chunks)))
            self._next_id += len(doc_chunks)
            self._doc_chunks[doc.doc_id] = chunk_ids
            for chunk_id, chunk in zip(chunk_ids, doc_chunks, strict=True):
                self._chunks[chunk_id] = chunk
            ids += chunk_ids
            texts += [c.text for c in doc_chunks]
        if ids:
            self._vectors.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                       np.asarray(ids, dtype=np.int64))
            self._bm25.add(ids, texts)

    async def delete(self, doc_ids: list[str]) -> None:
        gone: list[int] = []
        for doc_id in doc_ids:
            doc = self._docs.pop(doc_id, None)
            if doc is None:
                continue
            for key, value in doc.metadata.items():
                holders = self._by_meta.get((key, canonical_value(value)))
                if holders is not None:
                    holders.discard(doc_id)
                    if not holders:
                        del self._by_meta[(key, canonical_value(value))]
            for chunk_id in self._doc_chunks.pop(doc_id, []):
                self._chunks.pop(chunk_id, None)
                gone.append(chunk_id)
        if gone:
            self._vectors.remove_ids(self._faiss.IDSelectorBatch(np.asarray(gone, dtype=np.int64)))
            self._bm25.remove(gone)

    def _matching_docs(self, metadata_filter: dict[str, Any]) -> set[str]:
        sets = [self._by_meta.get((k, canonical_value(v)), set()) for k, v in metadata_filter.items()]
        sets.sort(key=len)
        return set.intersection(*sets) if sets else set(self._docs)

    def _allowed_chunks(self, metadata_filter: dict[str, Any] | None) -> np.ndarray | None:
        if not metadata_filter:
            return None
        ids = [c for d in self._matching_docs(metadata_filter) for c in self._doc_chunks.get(d, ())]
        return np.asarray(sorted(ids), dtype=np.int64)

    async def list_documents(self, offset: int, limit: int, metadata_filter: dict[str, Any] | None
                             ) -> tuple[list[DocRecord], int]:
        if not metadata_filter:
            total = len(self._docs)
            selected = [doc for i, doc in enumerate(self._docs.values()) if offset <= i < offset + limit] \
                if offset < total else []
            return selected, total
        wanted = self._matching_docs(metadata_filter)
        ordered = [doc for doc_id, doc in self._docs.items() if doc_id in wanted]
        return ordered[offset: offset + limit], len(ordered)

    def _found(self, chunk_id: int, score: float) -> Found:
        chunk = self._chunks[chunk_id]
        return Found(node_id=chunk.node_id, doc_id=chunk.doc_id, text=chunk.text,
                     metadata=self._docs[chunk.doc_id].metadata, score=score)

    async def search_dense(self, vector: np.ndarray, k: int, metadata_filter: dict[str, Any] | None
                           ) -> list[Found]:
        allowed = self._allowed_chunks(metadata_filter)
        if self._vectors.ntotal == 0 or (allowed is not None and not len(allowed)):
            return []
        params = None if allowed is None else self._faiss.SearchParameters(sel=self._faiss.IDSelectorBatch(allowed))
        k = min(k, self._vectors.ntotal)
        scores, ids = self._vectors.search(np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32), k,
                                           params=params)
        return [self._found(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    async def search_sparse(self, query: str, k: int, metadata_filter: dict[str, Any] | None) -> list[Found]:
        allowed = self._allowed_chunks(metadata_filter)
        if allowed is not None and not len(allowed):
            return []
        return [self._found(i, s) for i, s in self._bm25.search(query, k, allowed)]

    async def dump(self) -> IndexDump:
        chunks: list[Chunk] = []
        order: list[int] = []
        for doc_id in self._docs:
            for chunk_id in self._doc_chunks[doc_id]:
                chunks.append(self._chunks[chunk_id])
                order.append(chunk_id)
        if order:
            stored_ids = self._faiss.vector_to_array(self._vectors.id_map)
            rows = self._vectors.index.reconstruct_n(0, self._vectors.ntotal)
            position = {int(chunk_id): row for row, chunk_id in enumerate(stored_ids)}
            vectors = rows[[position[c] for c in order]]
        else:
            vectors = np.empty((0, self.dimension), dtype=np.float32)
        return IndexDump(documents=list(self._docs.values()), chunks=chunks, vectors=vectors,
                         embedding_model=self.embedding_model)

    async def drop(self) -> None:
        self._vectors.reset()
