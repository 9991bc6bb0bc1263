"""What a client knows of the local control plane from its files: running, ready, alive, or why not."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from kaito.operator import planestate
from kaito.operator.planestate import Phase, Record

HOME = Path("/srv/kaito")


@pytest.mark.parametrize(("pid", "record", "words"), [
    (None, None, "is not running"),
    (None, Record(pid=7, phase=Phase.READY), "is not running"),  # a file left by a killed plane
    (7, None, "still starting"),
    (7, Record(pid=6, phase=Phase.READY), "still starting"),  # another process's record
    (7, Record(pid=7, phase=Phase.STARTING), "still starting"),
    (7, Record(pid=7, phase=Phase.FAILED, reason="store damaged"), "failed to start: store damaged"),
    (7, Record(pid=7, phase=Phase.READY, age_s=planestate.STALE_AFTER_S + 1), "has not answered for 16s"),
])
def test_why_nothing_reconciles_is_one_line(pid, record, words):
    state = planestate.compute_state(HOME, pid, record)
    problem = state.problem()
    assert problem is not None and words in problem and str(HOME) in problem and "\n" not in problem
    assert not state.reconciling


def test_a_ready_plane_with_a_fresh_heartbeat_reconciles():
    state = planestate.compute_state(HOME, 7, Record(pid=7, phase=Phase.READY, age_s=1.0))
    assert state.reconciling and state.problem() is None


def test_the_state_file_round_trips_and_its_age_is_the_heartbeat(tmp_path):
    path = tmp_path / planestate.STATE_FILE
    assert planestate.read_state(path) is None
    planestate.write_state(path, 42, Phase.FAILED, "no room")
    assert planestate.read_failure(path, 42) == "no room" and planestate.read_failure(path, 43) is None
    planestate.write_state(path, 42, Phase.READY)
    old = time.time() - 100
    os.utime(path, (old, old))
    assert planestate.read_state(path).age_s >= 99

    async def beat_once() -> None:
        task = asyncio.create_task(planestate.keep_beating(path, every_s=0.01))
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(beat_once())
    assert planestate.read_state(path).age_s < 99
    path.write_text("{half")
    assert planestate.read_state(path) is None
