"""The work queue: dedup, no key processed twice at once, backoff growth, delayed adds, workers."""

from __future__ import annotations

import asyncio

import pytest

from kaito.controller.queue import Retry, ShutDown, WorkQueue, compute_backoff, run_workers


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
            raise Retry()
        if len(attempts) == 9 and attempts.get("flaky") == 3:
            finished.set()
        return None

    for i in range(8):
        q.add(f"k{i}")
    q.add("flaky")
    errors: list = []
    workers = asyncio.create_task(run_workers(q, handler, 3, on_error=lambda k, e: errors.append((k, e))))
    await asyncio.wait_for(finished.wait(), 5)
    await q.shut_down()
    await asyncio.wait_for(workers, 2)
    assert peak == 3
    assert attempts["flaky"] == 3
    assert all(attempts[f"k{i}"] == 1 for i in range(8))
    assert errors == []  # Retry is a request, not an error to report


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

    q.add("a")
    workers = asyncio.create_task(
        run_workers(q, handler, 2, on_error=lambda k, e: reported.append((k, type(e))))
    )
    await asyncio.wait_for(done.wait(), 2)
    await q.shut_down()
    await asyncio.wait_for(workers, 2)
    assert reported == [("a", RuntimeError)]
    assert q.failures("a") == 0


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
