"""The work queue: the one place where reconciles wait, retry and back off.

A reconcile never sleeps. When it needs to wait it returns `requeue_after`; when it fails the queue
schedules the key again with exponential backoff - without limit for a `TemporaryError`, at most
`bug_retry_limit` times for anything else (a bug: see `errors`). Keys are deduplicated
(a burst of watch events for one Workspace is one reconcile), a key is never handed to two workers
at once (an event arriving while it is being processed marks it dirty and it is re-queued when the
worker is done), and the number of workers bounds the concurrency.

The semantics follow client-go's rate-limited delaying queue, which controllers written for
Kubernetes expect; the implementation is plain asyncio, driven by the running loop's clock. An
optional `QueueObserver` hears the depth and how long each key waited (client-go's workqueue
metrics), so the operator can export them without reaching into the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from kaito.controller.errors import ErrorKind, Failure, classify_error

log = logging.getLogger(__name__)


class ShutDown(Exception):
    """`get()` on a queue that was shut down: the worker should exit."""


def compute_backoff(failures: int, base: float, cap: float) -> float:
    """Delay before retry number `failures` (1-based): base·2^(failures-1), at most `cap`."""
    if failures <= 0:
        return 0.0
    # Bound the exponent so a key that failed thousands of times cannot overflow a float.
    return min(cap, base * (2 ** min(failures - 1, 62)))


@dataclass(frozen=True, kw_only=True)
class QueueStats:
    queued: int
    processing: int
    delayed: int
    adds: int
    deduplicated: int


class QueueObserver(Protocol):
    """Hears what client-go's workqueue metrics report (`OperatorMetrics` is one)."""

    def set_queue_depth(self, depth: int) -> None:
        """Keys waiting to be taken, after every change."""

    def observe_queue_latency(self, seconds: float) -> None:
        """How long a key waited between being queued and a worker taking it."""


class WorkQueue:
    """An asyncio work queue with per-key dedup, delayed adds and per-key exponential backoff."""

    def __init__(self, *, backoff_base: float = 0.005, backoff_cap: float = 300.0,
                 observer: QueueObserver | None = None) -> None:
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()  # waiting to be processed (in _queue, or re-queued on done)
        self._processing: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._timers: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}
        self._ready = asyncio.Condition()
        self._shut_down = False
        self._adds = 0
        self._deduplicated = 0
        self._observer = observer
        # When each waiting key was first queued: deduplicated adds keep the earliest time, so the
        # latency is the oldest event's wait, as client-go measures it.
        self._queued_at: dict[Hashable, float] = {}

    # -- adding ------------------------------------------------------------------------------

    def add(self, key: Hashable) -> None:
        """Queue `key` now, unless it is already waiting; a key being processed is re-queued after."""
        if self._shut_down:
            return
        self._adds += 1
        if key in self._dirty:
            self._deduplicated += 1
            return
        self._dirty.add(key)
        if self._observer is not None:
            self._queued_at[key] = time.monotonic()
        if key not in self._processing:
            self._queue.append(key)
            self._notify()
            self._report_depth()

    def add_after(self, key: Hashable, delay: float) -> None:
        """Queue `key` after `delay` seconds; of several pending delays for a key the earliest wins."""
        if self._shut_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        handle = loop.call_at(due, self._fire, key)
        self._timers[key] = (due, handle)

    def add_rate_limited(self, key: Hashable) -> float:
        """Queue `key` again after its backoff (grows with each failure until `forget`); returns it."""
        delay = compute_backoff(self.count_failure(key), self._backoff_base, self._backoff_cap)
        self.add_after(key, delay)
        return delay

    def count_failure(self, key: Hashable) -> int:
        """One more consecutive failure of `key` (without re-queueing it); returns how many now."""
        self._failures[key] = self._failures.get(key, 0) + 1
        return self._failures[key]

    def forget(self, key: Hashable) -> None:
        """The key succeeded: its next failure starts the backoff from the base again."""
        self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _notify(self) -> None:
        # Conditions need their lock; waking waiters is scheduled rather than awaited so `add` can
        # stay synchronous and be called from watch callbacks and timer handles alike.
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._ready:
            self._ready.notify_all()

    def _report_depth(self) -> None:
        if self._observer is not None:
            self._observer.set_queue_depth(len(self._queue))

    # -- taking ------------------------------------------------------------------------------

    async def get(self) -> Hashable:
        """The next key to process; it is marked processing until `done(key)`."""
        async with self._ready:
            while not self._queue:
                if self._shut_down:
                    raise ShutDown()
                await self._ready.wait()
            key = self._queue.popleft()
            self._dirty.discard(key)
            self._processing.add(key)
        if self._observer is not None:
            queued_at = self._queued_at.pop(key, None)
            if queued_at is not None:
                self._observer.observe_queue_latency(time.monotonic() - queued_at)
            self._report_depth()
        return key

    def done(self, key: Hashable) -> None:
        """Processing of `key` finished; if it was added meanwhile, it goes back in the queue."""
        self._processing.discard(key)
        if key in self._dirty and not self._shut_down:
            self._queue.append(key)
            self._notify()
            self._report_depth()

    # -- lifecycle ---------------------------------------------------------------------------

    async def shut_down(self) -> None:
        """Stop handing out keys: waiting `get()` calls raise `ShutDown`; timers are cancelled."""
        self._shut_down = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._queue.clear()
        self._dirty.clear()
        self._queued_at.clear()
        self._report_depth()
        async with self._ready:
            self._ready.notify_all()

    @property
    def is_shut_down(self) -> bool:
        return self._shut_down

    def stats(self) -> QueueStats:
        return QueueStats(
            queued=len(self._queue),
            processing=len(self._processing),
            delayed=len(self._timers),
            adds=self._adds,
            deduplicated=self._deduplicated,
        )

    def is_idle(self) -> bool:
        """Nothing queued, nothing processing (delayed keys may still be pending)."""
        return not self._queue and not self._processing


FailureHandler = Callable[[Failure], Awaitable[None]]


async def run_workers(
    queue: WorkQueue,
    handler,
    concurrency: int,
    *,
    on_failure: FailureHandler | None = None,
    bug_retry_limit: int = 15,
) -> None:
    """Run `concurrency` workers until the queue shuts down: the concurrency limit of the controller.

    `handler(key)` returns the seconds after which to look at the key again (None: only on the next
    event); success resets the key's backoff. A `TemporaryError` re-queues the key with backoff; any
    other exception too, until the key has failed `bug_retry_limit` times more in a row, after
    which only a new `add` brings it back. Each failure is reported to `on_failure` before the key
    is released, so a report never races the next attempt.
    """

    async def fail(key: Hashable, exc: Exception) -> None:
        kind = classify_error(exc)
        if kind is ErrorKind.BUG and queue.failures(key) >= bug_retry_limit:
            failure = Failure(key=key, error=exc, kind=kind, attempt=queue.count_failure(key), retry_in=None)
        else:
            retry_in = queue.add_rate_limited(key)
            failure = Failure(key=key, error=exc, kind=kind, attempt=queue.failures(key), retry_in=retry_in)
        if on_failure is not None:
            try:
                await on_failure(failure)
            except Exception:  # noqa: BLE001 - reporting must never stop a worker
                log.exception("reporting the failure of %s failed", key)

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            try:
                requeue_after = await handler(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the queue is the single retry point
                await fail(key, exc)
            else:
                queue.forget(key)
                if requeue_after is not None:
                    queue.add_after(key, requeue_after)
            finally:
                queue.done(key)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
