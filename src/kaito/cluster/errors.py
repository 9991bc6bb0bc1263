"""Typed errors of the `Cluster` protocol, shared by every backend.

Callers (the controller's work queue above all) decide what to do from the error's *type*:
retry `Unavailable`, re-list on `Gone`, re-read on `Conflict`, record a condition on `Invalid`.
Nobody compares messages or HTTP status strings; the backends translate their own failures
(SQLite errors, lightkube's `ApiError`, httpx transport errors) into these once, at the edge.
"""

from __future__ import annotations


class ClusterError(Exception):
    """Any failure of a cluster operation. `status` is the HTTP-like code when one exists."""

    status: int = 500

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(ClusterError):
    """The named object (or its namespace / kind) does not exist."""

    status = 404


class Conflict(ClusterError):
    """The write carried a stale `metadata.resourceVersion`, or the object already exists.

    Retrying with a fresh read is the caller's job (a controller requeues).
    """

    status = 409


class Invalid(ClusterError):
    """The object is malformed (missing name, wrong kind, bad field): retrying cannot help."""

    status = 422


class Gone(ClusterError):
    """A watch asked for a resourceVersion that is no longer kept (compacted, 410 Gone).

    The caller re-lists to get a fresh resourceVersion and watches from there.
    """

    status = 410


class Unavailable(ClusterError):
    """The server is overloaded or unreachable (429, 5xx, connection refused, database busy).

    Retryable: the same request may succeed later.
    """

    status = 503

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


def is_retryable(err: BaseException) -> bool:
    """True for errors where repeating the same request later may succeed."""
    return isinstance(err, Unavailable)


class LocalStateError(ClusterError):
    """The local cluster's files cannot be used as they are (not retryable: someone must act).

    `path` is the file or folder at fault; the message names it and says what to do, in one line,
    so a command can print it as it is.
    """

    def __init__(self, message: str, *, path: str | object) -> None:
        super().__init__(message)
        self.path = str(path)


class StoreDamaged(LocalStateError):
    """The local store's file is not a sound kaito store (corrupt, empty, not SQLite, not ours)."""


class StateNotAccessible(LocalStateError):
    """The state directory (`$KAITO_HOME`) or a file in it cannot be read or written: permissions,
    a read-only file system, a file where a folder should be, a full disk."""
