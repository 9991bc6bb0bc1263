"""The overload guard: admit a request's choices to the engine's queue, or refuse with 429, up front.

Decided when the route is about to respond, before any byte (so a streamed request gets a real
HTTP 429 with `Retry-After` that clients retry, never a 200 followed by an error event). It counts
what is in flight here, not what the engine has already queued, so a burst of requests that arrive
together cannot all pass the check before any of them is queued.

KAITO's guard (v0.12, vLLM preset): refuse when the waiting queue exceeds `max-num-seqs`. That is
the default here (`queue_limit` = `--max-running`); `--max-queued N` sets the queue to N instead.
KAITO compares the queue before counting the new request and so lets one more wait; we count it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaito.runtime.inference.engine import InvalidRequest, QueueFull


@dataclass(kw_only=True)
class Admission:
    max_running: int  # requests the engine decodes at once
    queue_limit: int  # requests that may wait beyond those
    retry_after: int = 1  # seconds a refused client is told to wait
    in_flight: int = 0
    rejected: int = 0

    @property
    def waiting(self) -> int:
        return max(0, self.in_flight - self.max_running)

    def admit(self, choices: int) -> Ticket:
        """Reserve room for `choices` sequences, or raise `QueueFull` (HTTP 429).

        A request that could never fit, even on an idle server, is a 400: retrying would not help.
        """
        if choices > self.max_running + self.queue_limit:
            raise InvalidRequest(f"{choices} sequences in one request cannot run here: at most "
                                 f"{self.max_running + self.queue_limit} (running plus queued) at once")
        waiting_after = self.in_flight + choices - self.max_running
        if waiting_after > self.queue_limit:
            self.rejected += 1
            raise QueueFull(f"Too many requests: {max(waiting_after, 0)} would wait, more than the queue of "
                            f"{self.queue_limit} beside {self.max_running} running; retry later",
                            retry_after=self.retry_after)
        self.in_flight += choices
        return Ticket(admission=self, choices=choices)


@dataclass(kw_only=True)
class Ticket:
    """Room held for one request's choices; `release()` gives it back (once, whatever calls it)."""

    admission: Admission
    choices: int
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission.in_flight -= self.choices
