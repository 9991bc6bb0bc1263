"""The wire shapes of KAITO v0.12's RAG API (§4.4), as pydantic models.

Field names, defaults and bounds follow KAITO's `models.py`, so KAITO clients work unchanged.
Scores in `NodeWithScore` mean (see `retrieval.py`): `score` is the normalised reciprocal-rank
fusion of the two sides (1.0 = ranked first by both), `dense_score` the cosine similarity of the
query and the chunk embeddings, `sparse_score` the chunk's BM25 score; `source` says which sides
found the chunk (`both`, `dense_only`, `sparse_only`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Document(BaseModel):
    doc_id: str = ""
    text: str
    metadata: dict[str, Any] | None = Field(default_factory=dict)
    hash_value: str | None = None
    is_truncated: bool = False

    @field_validator("metadata", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return {} if value is None else value


class IndexRequest(BaseModel):
    index_name: str = Field(min_length=1)
    documents: list[Document]


class ListDocumentsResponse(BaseModel):
    documents: list[Document]
    count: int
    total_items: int


class UpdateDocumentRequest(BaseModel):
    documents: list[Document]


class UpdateDocumentResponse(BaseModel):
    updated_documents: list[Document]
    unchanged_documents: list[Document]
    not_found_documents: list[Document]


class DeleteDocumentRequest(BaseModel):
    doc_ids: list[str]


class DeleteDocumentResponse(BaseModel):
    deleted_doc_ids: list[str]
    not_found_doc_ids: list[str]


class NodeWithScore(BaseModel):
    doc_id: str
    node_id: str
    text: str
    score: float
    dense_score: float | None = None
    sparse_score: float | None = None
    source: str | None = None
    metadata: dict[str, Any] | None = None


def build_retrieve_request_model(max_top_k: int) -> type[BaseModel]:
    """`RetrieveRequest` with KAITO's bound on `max_node_count` taken from the settings (422 past it)."""

    class RetrieveRequest(BaseModel):
        model_config = ConfigDict(extra="ignore")

        index_name: str
        query: str
        max_node_count: int = Field(default=5, ge=1, le=max_top_k)
        metadata_filter: dict[str, Any] | None = None

    return RetrieveRequest


class RetrieveResponse(BaseModel):
    query: str
    results: list[NodeWithScore]
    count: int


class HealthStatus(BaseModel):
    status: str
    detail: str | None = None


class Message(BaseModel):
    """One chat message as far as RAG needs it; everything else travels untouched."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: Any = None


class ChatRequest(BaseModel):
    """The OpenAI chat body plus KAITO's `index_name` and `context_token_ratio`; unknown keys pass."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    messages: list[Message] = Field(min_length=1)
    model: str | None = None
    index_name: str | None = None
    context_token_ratio: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool | None = False
    n: int | None = 1
    tools: Any = None
    functions: Any = None
