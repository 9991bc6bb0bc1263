"""Errors a RAG operation can end with, each with the HTTP status it maps to (once, in `app.py`)."""

from __future__ import annotations


class RagError(Exception):
    """A request that cannot be served as asked; `status` is the HTTP answer."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class IndexNotFound(RagError):
    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"No such index: '{name}' exists.")


class Conflict(RagError):
    status = 409


class Upstream(RagError):
    """The embedding endpoint or the LLM could not be reached or failed (502)."""

    status = 502


class NotConfigured(RagError):
    status = 503
