"""Structured logs for the operator processes: one JSON object per line, tagged with the object.

Log collectors in clusters parse JSON lines; a reconcile's lines carry the reconciled object's name
under its kind (`"workspace": "x"`, `"ragengine": "y"`) and its namespace (set by `tagged` around
each reconcile, or taken from a `WorkspaceKey` argument) so one object's story can be filtered out
of a busy operator's log.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

from kaito.controller.observe import WorkspaceKey

_current_object: contextvars.ContextVar[tuple[str, Any] | None] = contextvars.ContextVar("reconciled", default=None)
LEVELS = ("debug", "info", "warning", "error")


@contextlib.contextmanager
def tagged(key: Any, kind: str = "workspace") -> Iterator[None]:
    """Every log line inside (in this task) names the object `key` (`namespace`, `name`) of `kind`."""
    token = _current_object.set((kind, key))
    try:
        yield
    finally:
        _current_object.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the Workspace, and any `extra`."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        current = _current_object.get()
        if current is None:
            found = next((a for a in _args(record) if isinstance(a, WorkspaceKey)), None)
            current = ("workspace", found) if found is not None else None
        if current is not None:
            kind, key = current
            out[kind], out["namespace"] = key.name, key.namespace
        for name, value in vars(record).items():
            if name not in self._STANDARD and not name.startswith("_"):
                out[name] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out)


def _args(record: logging.LogRecord) -> tuple:
    if isinstance(record.args, tuple):
        return record.args
    return ()


def configure_logging(level: str = "info", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The HTTP clients log every request at INFO: a watch-heavy operator would drown its own logs.
    quiet = logging.DEBUG if level.lower() == "debug" else logging.WARNING
    for name in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(quiet)
