"""Start-up failures of the model server, by kind: exit code, a stable reason, a machine-readable record.

A pod that cannot start should say why in a way the controller can read without parsing logs.
Kubernetes keeps what a container writes to its termination-message file (`/dev/termination-log`
by default) in the pod status (`lastState.terminated.message`); we write one JSON object there:
`{"reason": ..., "message": ..., "field": ..., "file": ...}`. Humans get one `error:` line on
stderr. Exit codes: 1 model load / engine failure, 2 bad command line, 3 bad runtime-parameter
file (`inference.config`), 4 the engine cannot run on this machine.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TERMINATION_LOG_ENV = "KAITO_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
_MAX_MESSAGE_BYTES = 4096  # the kubelet keeps at most 4096 bytes of the message


class StartupError(Exception):
    """A failure before the server can serve; `exit_code` and `reason` name its kind."""

    exit_code = 1
    reason = "StartupFailed"

    def __init__(self, message: str, *, field: str | None = None, file: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.file = file

    def record(self) -> dict[str, str]:
        record = {"reason": self.reason, "message": str(self)}
        if self.field:
            record["field"] = self.field
        if self.file:
            record["file"] = self.file
        return record


class ModelLoadError(StartupError):
    exit_code = 1
    reason = "ModelLoadFailed"


class ArgumentsError(StartupError):
    exit_code = 2
    reason = "InvalidArguments"


class RuntimeConfigError(StartupError):
    """The runtime-parameter file is missing, malformed or names an option vLLM does not have."""

    exit_code = 3
    reason = "InvalidRuntimeParameters"


class EngineUnavailableError(StartupError):
    exit_code = 4
    reason = "EngineUnavailable"


def write_termination_message(error: StartupError, env: dict[str, str] | None = None) -> Path | None:
    """Write the JSON record where Kubernetes looks for it; None when there is no such file here.

    `KAITO_TERMINATION_LOG` names the file (a local runner sets it); otherwise the Kubernetes default
    is used only when it already exists, as the kubelet creates it for every container.
    """
    env = dict(os.environ) if env is None else env
    explicit = env.get(TERMINATION_LOG_ENV)
    path = Path(explicit or DEFAULT_TERMINATION_LOG)
    if not explicit and not path.exists():
        return None
    data = json.dumps(error.record(), separators=(",", ":")).encode()
    if len(data) > _MAX_MESSAGE_BYTES:
        record = error.record()
        record["message"] = record["message"][:1024] + "…"
        data = json.dumps(record, separators=(",", ":")).encode()
    try:
        path.write_bytes(data)
    except OSError:
        return None
    return path


def report(error: StartupError) -> int:
    """Tell the user (stderr) and the cluster (termination message); return the exit code."""
    where = f" ({error.file})" if error.file else ""
    print(f"error: {error}{where}", file=sys.stderr)
    write_termination_message(error)
    return error.exit_code
