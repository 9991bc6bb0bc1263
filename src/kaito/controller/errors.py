"""The two kinds of failure a reconcile can have, decided by type and never by message.

`TemporaryError`: the world may fix itself (the API server is busy, a write raced another one);
the work queue retries the key with exponential backoff. `PermanentError`: the user has to change
something (unknown preset, SKU too small, an invalid Workspace); retrying cannot help, so the
reconciler records a condition with a stable Reason and stops until the Workspace changes.
"""

from __future__ import annotations


class ReconcileError(Exception):
    """Base of the controller's own errors."""


class TemporaryError(ReconcileError):
    """Retry later through the work queue's backoff."""


class PermanentError(ReconcileError):
    """A problem only the user can fix: becomes condition `condition_type` = False with `reason`."""

    def __init__(self, condition_type: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.condition_type = condition_type
        self.reason = reason
        self.message = message
