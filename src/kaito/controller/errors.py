"""The kinds of reconcile failure, decided by type and never by message (ARCHITECTURE rule 2).

* A user's mistake (unknown preset, SKU too small, a pod template the API server refuses) is not
  an exception at all: planning records it as a condition with a stable Reason, and the Workspace
  waits for its spec to change.
* `TemporaryError`: the world may fix itself (the API server is busy, a write raced another one);
  the work queue retries the key with exponential backoff, for as long as it takes.
* Anything else is a bug in kaito: logged with its traceback, counted in
  `kaito_reconcile_errors_total{kind="bug"}`, recorded as a Warning event on the Workspace, and
  retried with backoff at most `Settings.bug_retry_limit` times - then left alone until the next
  event for that Workspace, so one broken Workspace cannot keep a worker busy forever.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import StrEnum


class TemporaryError(Exception):
    """Retry later through the work queue's backoff."""


class ErrorKind(StrEnum):
    TEMPORARY = "temporary"
    BUG = "bug"


def classify_error(exc: BaseException) -> ErrorKind:
    return ErrorKind.TEMPORARY if isinstance(exc, TemporaryError) else ErrorKind.BUG


@dataclass(frozen=True, kw_only=True)
class Failure:
    """One failed reconcile, as the work queue handled it."""

    key: Hashable
    error: Exception
    kind: ErrorKind
    attempt: int  # consecutive failures of this key, this one included
    retry_in: float | None  # seconds until the queue tries again; None: not retried (bug retry limit)
    controller: str = "workspace"  # the kind whose reconcile failed (set by the manager)

    @property
    def gave_up(self) -> bool:
        return self.retry_in is None
