"""What any process can know of the local control plane without asking it: running, ready, alive.

`kaito up` may say "up" only once the plane answers, and every command must know whether anybody
reconciles what it reads. Two files beside the store tell:
- the lock (`controlplane.lock`, see `controlplane.running_pid`): held means the process lives; the
  kernel drops it when the process dies, even by SIGKILL;
- the state file (`controlplane.state`, JSON): "Starting" once the plane holds the lock, "Ready"
  once its store opened (checked in full) and its controller started, "Failed" with the one-line
  reason when it could not start. While Ready, the plane's own event loop refreshes the file's
  modification time every `HEARTBEAT_S` (its heartbeat), so a plane that hangs (stopped, its loop
  blocked) shows as stale although it still holds the lock.
The file is replaced whole (written aside, renamed), so a reader never sees half of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "controlplane.state"
HEARTBEAT_S = 2.0
# A heartbeat older than this means nobody reconciles: several beats missed, far above the pauses
# a busy but healthy loop makes.
STALE_AFTER_S = 15.0


class Phase(enum.StrEnum):
    STARTING = "Starting"
    READY = "Ready"
    FAILED = "Failed"


@dataclass(frozen=True, kw_only=True)
class Record:
    """What the state file says, and how old its heartbeat is."""

    pid: int
    phase: Phase
    reason: str | None = None
    age_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class PlaneState:
    """The plane of one state directory as a client sees it: `pid` holds the lock (None: none runs)."""

    home: Path
    pid: int | None
    record: Record | None  # the state file, only when it is this pid's

    @property
    def ready(self) -> bool:
        return self.pid is not None and self.record is not None and self.record.phase is Phase.READY

    @property
    def reconciling(self) -> bool:
        """Ready and its heartbeat fresh: somebody acts on what is written to the store."""
        return self.ready and self.record is not None and self.record.age_s <= STALE_AFTER_S

    def problem(self) -> str | None:
        """One line saying why nothing reconciles (None when the plane is ready and alive)."""
        if self.pid is None:
            return f"the local control plane of {self.home} is not running (start it with `kaito up --detach`)"
        if self.record is None or self.record.phase is Phase.STARTING:
            return f"the local control plane of {self.home} (pid {self.pid}) is still starting"
        if self.record.phase is Phase.FAILED:
            return f"the local control plane of {self.home} failed to start: {self.record.reason}"
        if not self.reconciling:
            return (f"the local control plane of {self.home} (pid {self.pid}) has not answered for "
                    f"{self.record.age_s:.0f}s: it hangs or is stopped (`kaito down`, then `kaito up --detach`)")
        return None


def write_state(path: Path, pid: int, phase: Phase, reason: str | None = None) -> None:
    """Replace the state file whole. Errors are the caller's (a plane that cannot write its own
    folder cannot run)."""
    tmp = path.with_name(f".{path.name}.{pid}")
    tmp.write_text(json.dumps({"pid": pid, "phase": str(phase), "reason": reason}) + "\n")
    os.replace(tmp, path)


def read_state(path: Path, now: float | None = None) -> Record | None:
    """The state file as a `Record`, or None when it is missing or unreadable (a plane of an older kaito)."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
        doc = json.loads(path.read_text())
        return Record(pid=int(doc["pid"]), phase=Phase(doc["phase"]), reason=doc.get("reason"), age_s=max(age, 0.0))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def compute_state(home: Path, pid: int | None, record: Record | None) -> PlaneState:
    """The plane's state from the lock holder's pid and the state file (pure)."""
    mine = record if record is not None and pid is not None and record.pid == pid else None
    return PlaneState(home=home, pid=pid, record=mine)


def read_failure(path: Path, pid: int) -> str | None:
    """The reason process `pid` gave for failing to start, if it wrote one."""
    record = read_state(path)
    if record is not None and record.pid == pid and record.phase is Phase.FAILED:
        return record.reason
    return None


async def keep_beating(path: Path, every_s: float = HEARTBEAT_S) -> None:
    """Until cancelled: refresh the state file's modification time (the plane's heartbeat)."""
    while True:
        with contextlib.suppress(OSError):  # a full disk must not stop the plane; clients see it as stale
            os.utime(path)
        await asyncio.sleep(every_s)
