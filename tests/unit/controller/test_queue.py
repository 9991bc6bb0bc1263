"""The work queue: dedup, no key processed twice at once, backoff growth, delayed adds, workers."""

from __future__ import annotations

import asyncio

import pytest

from kaito.controller.errors import ErrorKind, TemporaryError
from kaito.controller.queue import ShutDown, WorkQueue, compute_backoff, run_workers


def test_backoff_doubles_and_is_capped():
    assert compute_backoff(0, 0.1, 10) == 0
    assert [compute_backoff(n, 0.1, 10) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert compute_backoff(50, 0.1, 10) == 10
    assert compute_backoff(10_000, 0.1, 10) == 10


async def test_duplicate_adds_are_one_item():
    q = WorkQueue()
    for _ in range(5):
        q.add("a")
    q.add("b")
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert q.stats().queued == 0
    assert q.stats().deduplicated == 4


async def test_key_added_while_processing_comes_back_after_done_only():
    q = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")  # an event while a worker holds the key
    assert q.stats().queued == 0  # not handed to a second worker
    q.done(key)
    assert await asyncio.wait_for(q.get(), 1) == "a"


async def test_add_after_keeps_earliest_and_fires():
    q = WorkQueue()
    q.add_after("a", 10)
    q.add_after("a", 0.01)
    q.add_after("a", 5)  # later than the pending one: ignored
    assert q.stats().delayed == 1
    assert await asyncio.wait_for(q.get(), 2) == "a"
    assert q.stats().delayed == 0


async def test_rate_limited_backoff_grows_until_forget():
    q = WorkQueue(backoff_base=0.001, backoff_cap=1)
    delays = [q.add_rate_limited("a") for _ in range(4)]
    assert delays == pytest.approx([0.001, 0.002, 0.004, 0.008])
    assert q.failures("a") == 4
    q.forget("a")
    assert q.add_rate_limited("a") == pytest.approx(0.001)


async def test_shutdown_wakes_getters():
    q = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    await q.shut_down()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(getter, 1)


async def test_workers_respect_concurrency_and_retry_failures():
    q = WorkQueue(backoff_base=0.001)
    running = 0
    peak = 0
    attempts: dict[str, int] = {}
    finished = asyncio.Event()

    async def handler(key):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        attempts[key] = attempts.get(key, 0) + 1
        if key == "flaky" and attempts[key] < 3:
            raise TemporaryError("busy")
        if len(attempts) == 9 and attempts.get("flaky") == 3:
            finished.set()
        return None

    for i in range(8):
        q.add(f"k{i}")
    q.add("flaky")
    failures: list = []

    async def on_failure(failure):
        failures.append(failure)

    workers = asyncio.create_task(run_workers(q, handler, 3, on_failure=on_failure, bug_retry_limit=0))
    await asyncio.wait_for(finished.wait(), 5)
    await q.shut_down()
    await asyncio.wait_for(workers, 2)
    assert peak == 3
    assert attempts["flaky"] == 3  # a temporary error is retried past the bug retry limit
    assert all(attempts[f"k{i}"] == 1 for i in range(8))
    assert [(f.key, f.kind, f.attempt, f.gave_up) for f in failures] == [
        ("flaky", ErrorKind.TEMPORARY, 1, False), ("flaky", ErrorKind.TEMPORARY, 2, False)]


async def test_handler_requeue_after_brings_key_back():
    q = WorkQueue()
    seen: list[str] = []
    twice = asyncio.Event()

    async def handler(key):
        seen.append(key)
        if len(seen) == 2:
            twice.set()
            return None
        return 0.01

    q.add("a")
    workers = asyncio.create_task(run_workers(q, handler, 1))
    await asyncio.wait_for(twice.wait(), 2)
    await q.shut_down()
    await asyncio.wait_for(workers, 2)
    assert seen == ["a", "a"]


async def test_unexpected_exception_is_reported_and_retried():
    q = WorkQueue(backoff_base=0.001)
    calls = 0
    done = asyncio.Event()
    reported: list = []

    async def handler(key):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        done.set()

    async def on_failure(failure):
        reported.append((failure.key, type(failure.error), failure.kind))

    q.add("a")
    workers = asyncio.create_task(run_workers(q, handler, 2, on_failure=on_failure))
    await asyncio.wait_for(done.wait(), 2)
    await q.shut_down()
    await asyncio.wait_for(workers, 2)
    assert reported == [("a", RuntimeError, ErrorKind.BUG)]
    assert q.failures("a") == 0


async def test_a_bug_is_retried_up_to_the_limit_then_only_on_a_new_add():
    q = WorkQueue(backoff_base=0.001)
    calls: list[str] = []
    failures: list = []
    reported = asyncio.Event()

    async def handler(key):
        calls.append(key)
        raise KeyError("missing")

    async def on_failure(failure):
        failures.append(failure)
        if failure.gave_up:
            reported.set()

    q.add("a")
    workers = asyncio.create_task(run_workers(q, handler, 2, on_failure=on_failure, bug_retry_limit=3))
    await asyncio.wait_for(reported.wait(), 5)
    while not q.is_idle():  # the worker releases the key after reporting
        await asyncio.sleep(0)
    assert calls == ["a"] * 4  # the first attempt and three retries
    assert [(f.attempt, f.gave_up) for f in failures] == [(1, False), (2, False), (3, False), (4, True)]
    assert q.stats().delayed == 0 and q.is_idle()
    reported.clear()
    q.add("a")  # a new event: one more attempt, no more retries
    await asyncio.wait_for(reported.wait(), 5)
    await q.shut_down()
    await asyncio.wait_for(workers, 2)
    assert calls == ["a"] * 5 and failures[-1].attempt == 5 and failures[-1].gave_up


class RecordingObserver:
    def __init__(self) -> None:
        self.depths: list[int] = []
        self.waits: list[float] = []

    def set_queue_depth(self, depth: int) -> None:
        self.depths.append(depth)

    def observe_queue_latency(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_observer_hears_depth_and_one_wait_per_taken_key():
    seen = RecordingObserver()
    q = WorkQueue(observer=seen)
    q.add("a")
    q.add("a")  # deduplicated: no second wait, no depth change
    q.add("b")
    assert seen.depths == [1, 2]
    assert await q.get() == "a"
    assert seen.depths[-1] == 1 and len(seen.waits) == 1
    q.add("a")  # arrives while "a" is processing: queued (and measured) only after done
    assert seen.depths[-1] == 1
    q.done("a")
    assert seen.depths[-1] == 2
    assert await q.get() == "b"
    assert await q.get() == "a"
    assert seen.depths[-1] == 0
    assert len(seen.waits) == 3 and all(w >= 0 for w in seen.waits)


async def test_observer_wait_counts_from_the_first_add():
    seen = RecordingObserver()
    q = WorkQueue(observer=seen)
    q.add("a")
    await asyncio.sleep(0.05)
    q.add("a")  # a later duplicate must not reset the clock
    await q.get()
    assert seen.waits[0] >= 0.05


async def test_shut_down_reports_an_empty_queue():
    seen = RecordingObserver()
    q = WorkQueue(observer=seen)
    q.add("a")
    await q.shut_down()
    assert seen.depths[-1] == 0
