"""The overload guard: KAITO's semantics by default, our queue size when set, room given back once."""

from __future__ import annotations

import pytest

from kaito.runtime.inference.admission import Admission
from kaito.runtime.inference.engine import InvalidRequest, QueueFull
from kaito.runtime.inference.settings import build_settings


def test_kaito_guard_by_default_and_max_queued_when_set():
    assert build_settings(["--max-running", "4"], env={}).queue_limit == 4  # KAITO: waiting <= max-num-seqs
    assert build_settings(["--max-running", "4", "--max-queued", "1"], env={}).queue_limit == 1


def test_admits_running_plus_queue_then_refuses_with_retry_after():
    guard = Admission(max_running=2, queue_limit=1)
    tickets = [guard.admit(1) for _ in range(3)]
    with pytest.raises(QueueFull) as refused:
        guard.admit(1)
    assert refused.value.retry_after >= 1 and refused.value.code == "rate_limit_exceeded"
    assert (guard.waiting, guard.rejected) == (1, 1)
    tickets[0].release()
    tickets[0].release()  # idempotent: released once whoever calls it
    assert guard.in_flight == 2
    guard.admit(1)


def test_a_request_that_can_never_fit_is_a_400_not_a_429():
    with pytest.raises(InvalidRequest, match="at most 3"):
        Admission(max_running=2, queue_limit=1).admit(4)
