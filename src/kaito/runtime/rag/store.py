"""What every vector store behind an index offers (`IndexStore`), and the records that cross it.

Two implementations: `store_faiss.FaissStore` (everything in this process: FAISS for vectors, the
incremental BM25 of `bm25.py`, documents in dicts) and `store_qdrant.QdrantStore` (everything in a
Qdrant collection: dense and BM25 sparse vectors, documents in the payload). The service talks to
this protocol only; fusion of the two sides happens above it, the same for both (`retrieval.py`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

_NODE_NAMESPACE = uuid.UUID("5a6f1c1e-6b1d-4a44-9a3c-6b6169746f72")


@dataclass(kw_only=True)
class DocRecord:
    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Chunk:
    node_id: str
    doc_id: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Found:
    """One chunk found by one side of the search, with that side's score (higher is better)."""

    node_id: str
    doc_id: str
    text: str
    metadata: dict[str, Any]
    score: float


@dataclass(kw_only=True)
class IndexDump:
    """An index in engine-neutral form: what /persist writes and /load reads."""

    documents: list[DocRecord]
    chunks: list[Chunk]
    vectors: np.ndarray  # one row per chunk, same order
    embedding_model: str


def build_node_id(doc_id: str, position: int, text: str) -> str:
    """Stable chunk id: the same document split the same way gets the same ids (in any store)."""
    return str(uuid.uuid5(_NODE_NAMESPACE, f"{doc_id}\x00{position}\x00{text}"))


def canonical_value(value: Any) -> str:
    """Metadata values compared exactly, as KAITO's filters do (1 != "1", order of keys ignored)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def matches(metadata: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    if not wanted:
        return True
    return all(k in metadata and canonical_value(metadata[k]) == canonical_value(v) for k, v in wanted.items())


class IndexStore(Protocol):
    async def count_documents(self) -> int: ...

    async def has_documents(self, doc_ids: list[str]) -> set[str]:
        """The subset of `doc_ids` present."""
        ...

    async def get_documents(self, doc_ids: list[str]) -> dict[str, DocRecord]: ...

    async def add(self, documents: list[DocRecord], chunks: list[list[Chunk]], vectors: np.ndarray) -> None:
        """Add documents with their chunks (per document) and one vector row per chunk, in order.

        A document already present is replaced (its old chunks go).
        """
        ...

    async def delete(self, doc_ids: list[str]) -> None: ...

    async def list_documents(self, offset: int, limit: int, metadata_filter: dict[str, Any] | None
                             ) -> tuple[list[DocRecord], int]: ...

    async def search_dense(self, vector: np.ndarray, k: int, metadata_filter: dict[str, Any] | None
                           ) -> list[Found]:
        """Best `k` chunks by cosine similarity (the score), best first."""
        ...

    async def search_sparse(self, query: str, k: int, metadata_filter: dict[str, Any] | None) -> list[Found]:
        """Best `k` chunks by BM25 score, best first; only chunks sharing a term with the query."""
        ...

    async def dump(self) -> IndexDump: ...

    async def drop(self) -> None:
        """Forget the in-process handle (a Qdrant collection stays on the server, as in KAITO)."""
        ...
