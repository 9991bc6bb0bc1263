"""The Qdrant store (`VECTOR_DB_TYPE=qdrant`): one collection per index, everything in the collection.

Each chunk is a point with a dense vector `dense` (cosine distance) and a sparse vector `bm25`
(BM25 term weights from `bm25.py`; Qdrant applies idf through `Modifier.IDF`), and a payload
{doc_id, text, chunk, metadata}; a document's own text rides on its first chunk (`chunk == 0`),
so listing documents is a filtered scroll. Both sides are queried separately and fused by the
service exactly as for FAISS (`retrieval.py`), so scores mean the same with either engine.

With `VECTOR_DB_URL` set this talks to a Qdrant server (API key from `VECTOR_DB_ACCESS_SECRET`);
without it, qdrant-client's local mode keeps the collections on disk under the persist dir.
Collections outlive the service: at start every collection with our layout is an index again,
and `DELETE /indexes/{name}` forgets the handle but keeps the collection (KAITO's behaviour).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from kaito.runtime.rag import bm25
from kaito.runtime.rag.errors import RagError
from kaito.runtime.rag.store import Chunk, DocRecord, Found, IndexDump

DENSE = "dense"
SPARSE = "bm25"
_BATCH = 256


def open_client(url: str | None, api_key: str | None, persist_dir: Path) -> Any:
    from qdrant_client import AsyncQdrantClient

    if url:
        return AsyncQdrantClient(url=url, api_key=api_key, timeout=60)
    Path(persist_dir).mkdir(parents=True, exist_ok=True)
    return AsyncQdrantClient(path=str(Path(persist_dir) / "qdrant"))


async def list_collections(client: Any) -> list[str]:
    """Collections laid out as ours (a dense vector named `dense`)."""
    names = []
    for collection in (await client.get_collections()).collections:
        info = await client.get_collection(collection.name)
        vectors = info.config.params.vectors
        if isinstance(vectors, dict) and DENSE in vectors:
            names.append(collection.name)
    return names


class QdrantStore:
    def __init__(self, client: Any, collection: str, embedding_model: str) -> None:
        from qdrant_client import models

        self._client = client
        self._m = models
        self.collection = collection
        self.embedding_model = embedding_model

    @classmethod
    async def create(cls, client: Any, collection: str, dimension: int, embedding_model: str,
                     fresh: bool = False) -> QdrantStore:
        store = cls(client, collection, embedding_model)
        m = store._m
        exists = await client.collection_exists(collection)
        if exists and fresh:
            await client.delete_collection(collection)
        if not exists or fresh:
            await client.create_collection(
                collection, vectors_config={DENSE: m.VectorParams(size=dimension, distance=m.Distance.COSINE)},
                sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)})
            with warnings.catch_warnings():  # local mode says payload indexes do nothing there
                warnings.simplefilter("ignore", UserWarning)
                await client.create_payload_index(collection, "doc_id", m.PayloadSchemaType.KEYWORD)
                await client.create_payload_index(collection, "chunk", m.PayloadSchemaType.INTEGER)
        return store

    def _filter(self, metadata_filter: dict[str, Any] | None, *extra: Any) -> Any:
        m = self._m
        must = list(extra)
        for key, value in (metadata_filter or {}).items():
            if isinstance(value, float) or not isinstance(value, (str, int, bool)):
                raise RagError(f"metadata_filter.{key}: the qdrant engine matches strings, integers and "
                               f"booleans only, got {type(value).__name__}")
            must.append(m.FieldCondition(key=f"metadata.{key}", match=m.MatchValue(value=value)))
        return m.Filter(must=must) if must else None

    def _first_chunks(self, doc_ids: list[str] | None = None) -> list[Any]:
        m = self._m
        conditions = [m.FieldCondition(key="chunk", match=m.MatchValue(value=0))]
        if doc_ids is not None:
            conditions.append(m.FieldCondition(key="doc_id", match=m.MatchAny(any=doc_ids)))
        return conditions

    async def _scroll(self, flt: Any, limit: int | None, with_vectors: Any = False) -> list[Any]:
        points: list[Any] = []
        offset = None
        while limit is None or len(points) < limit:
            batch, offset = await self._client.scroll(self.collection, scroll_filter=flt, offset=offset,
                                                      limit=_BATCH if limit is None else min(_BATCH, limit - len(points)),
                                                      with_payload=True, with_vectors=with_vectors)
            points += batch
            if offset is None:
                break
        return points

    async def count_documents(self) -> int:
        result = await self._client.count(self.collection, count_filter=self._m.Filter(must=self._first_chunks()),
                                          exact=True)
        return int(result.count)

    async def get_documents(self, doc_ids: list[str]) -> dict[str, DocRecord]:
        if not doc_ids:
            return {}
        points = await self._scroll(self._m.Filter(must=self._first_chunks(doc_ids)), None)
        return {p.payload["doc_id"]: _doc(p.payload) for p in points}

    async def has_documents(self, doc_ids: list[str]) -> set[str]:
        return set(await self.get_documents(doc_ids))

    async def add(self, documents: list[DocRecord], chunks: list[list[Chunk]], vectors: np.ndarray) -> None:
        m = self._m
        await self.delete([d.doc_id for d in documents])
        points = []
        row = 0
        for doc, doc_chunks in zip(documents, chunks, strict=True):
            for position, chunk in enumerate(doc_chunks):
                payload: dict[str, Any] = {"doc_id": doc.doc_id, "text": chunk.text, "chunk": position,
                                           "metadata": doc.metadata}
                if position == 0:
                    payload["doc_text"] = doc.text
                indices, values = bm25.build_sparse_document(chunk.text)
                points.append(m.PointStruct(id=chunk.node_id, payload=payload, vector={
                    DENSE: vectors[row].tolist(), SPARSE: m.SparseVector(indices=indices, values=values)}))
                row += 1
        for start in range(0, len(points), _BATCH):
            await self._client.upsert(self.collection, points=points[start: start + _BATCH], wait=True)

    async def delete(self, doc_ids: list[str]) -> None:
        if not doc_ids:
            return
        m = self._m
        flt = m.Filter(must=[m.FieldCondition(key="doc_id", match=m.MatchAny(any=doc_ids))])
        await self._client.delete(self.collection, points_selector=m.FilterSelector(filter=flt), wait=True)

    async def list_documents(self, offset: int, limit: int, metadata_filter: dict[str, Any] | None
                             ) -> tuple[list[DocRecord], int]:
        flt = self._filter(metadata_filter, *self._first_chunks())
        total = int((await self._client.count(self.collection, count_filter=flt, exact=True)).count)
        points = await self._scroll(flt, offset + limit) if offset < total else []
        return [_doc(p.payload) for p in points[offset: offset + limit]], total

    def _found(self, points: list[Any]) -> list[Found]:
        return [Found(node_id=str(p.id), doc_id=p.payload["doc_id"], text=p.payload["text"],
                      metadata=p.payload.get("metadata") or {}, score=float(p.score)) for p in points]

    async def search_dense(self, vector: np.ndarray, k: int, metadata_filter: dict[str, Any] | None
                           ) -> list[Found]:
        result = await self._client.query_points(self.collection, query=vector.tolist(), using=DENSE, limit=k,
                                                 query_filter=self._filter(metadata_filter),
                                                 with_payload=["doc_id", "text", "metadata"])
        return self._found(result.points)

    async def search_sparse(self, query: str, k: int, metadata_filter: dict[str, Any] | None) -> list[Found]:
        indices, values = bm25.build_sparse_query(query)
        if not indices:
            return []
        result = await self._client.query_points(
            self.collection, query=self._m.SparseVector(indices=indices, values=values), using=SPARSE, limit=k,
            query_filter=self._filter(metadata_filter), with_payload=["doc_id", "text", "metadata"])
        return [f for f in self._found(result.points) if f.score > 0]

    async def dump(self) -> IndexDump:
        points = await self._scroll(None, None, with_vectors=[DENSE])
        points.sort(key=lambda p: (p.payload["doc_id"], p.payload["chunk"]))
        documents = [_doc(p.payload) for p in points if p.payload["chunk"] == 0]
        chunks = [Chunk(node_id=str(p.id), doc_id=p.payload["doc_id"], text=p.payload["text"]) for p in points]
        rows = [p.vector[DENSE] for p in points]
        vectors = np.asarray(rows, dtype=np.float32) if rows else np.empty((0, 0), dtype=np.float32)
        return IndexDump(documents=documents, chunks=chunks, vectors=vectors, embedding_model=self.embedding_model)

    async def drop(self) -> None:
        return None


def _doc(payload: dict[str, Any]) -> DocRecord:
    return DocRecord(doc_id=payload["doc_id"], text=payload.get("doc_text", payload.get("text", "")),
                     metadata=payload.get("metadata") or {})
