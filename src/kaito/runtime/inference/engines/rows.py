"""One request's row in the transformers engine's batch: its state, and how a chosen token becomes an event.

Kept apart from the batch loop because it is the per-request half of the engine: sampling state,
incremental text with stop strings, and the rules that end a row (EOS unless ignored, a complete
grammar, a stop string, `max_tokens`), all decided on one token at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.engines import sampling
from kaito.runtime.inference.engines.detokenize import TextStream

# (request id, event or error) pairs of one engine step, and the stats after it (the engine process)
Publish = Callable[[list[tuple[str, object]], api.EngineStats], None]


@dataclass(kw_only=True)
class Row:
    request: api.GenerationRequest
    loop: asyncio.AbstractEventLoop | None  # None: events leave through `Publish` (the engine process)
    events: asyncio.Queue | None
    text: TextStream
    sampler: sampling.RowSampler
    cancelled: bool = False  # leaves the batch at the next step
    finished: bool = False  # ... because it ended (finish reason or error), not because it was dropped

    @property
    def tokens(self) -> list[int]:
        """Everything this row has fed or will feed the model: prompt, then output."""
        return list(self.request.prompt_token_ids) + self.sampler.generated

    def advance(self, token: int, logprob: api.TokenLogprob | None, prompt_logprobs,
                eos: tuple[int, ...]) -> api.TokenEvent:
        """Take the chosen token: the event to send, the row marked finished if this token ends it."""
        params = self.request.params
        self.sampler.record(token)
        generated = len(self.sampler.generated)
        grammar = self.sampler.grammar
        is_eos = token in eos and (not params.ignore_eos or grammar is not None)
        grammar_done = grammar is not None and not is_eos and grammar.accept(token)
        delta, stopped = ("", False) if is_eos else self.text.push(token)
        finish = None
        if stopped or is_eos or grammar_done:
            finish = "stop"
        elif generated >= params.max_tokens:
            finish = "length"
        if finish is not None and not stopped:
            delta += self.text.flush()
        if finish is not None:
            self.cancelled = self.finished = True  # removed from the batch before the next step
        return api.TokenEvent(token_ids=(token,), text=delta, finish_reason=finish,
                              prompt_tokens=len(self.request.prompt_token_ids), completion_tokens=generated,
                              logprobs=(logprob,) if logprob is not None else (), prompt_logprobs=prompt_logprobs)


@dataclass(kw_only=True)
class Chunked:
    """A long prompt being prefilled a chunk per step, in its own cache until it is complete."""

    row: Row
    cache: object
    done: int = 0  # prompt tokens already in `cache`


def _deliver(items: list[tuple[asyncio.Queue, object]]) -> None:
    for queue, item in items:
        queue.put_nowait(item)


class Outbox:
    """One engine step's events, handed over together: one call per asyncio loop, or one `publish`.

    In the engine process, `publish` also carries the stats, sent whenever they changed, even in a
    step with no events (a cancelled row leaves, the server's gauges must see it).
    """

    def __init__(self, publish: Publish | None) -> None:
        self._publish = publish
        self._items: list[tuple[Row, object]] = []
        self._published: tuple | None = None

    def add(self, row: Row, item: object) -> None:
        self._items.append((row, item))

    def flush(self, stats: Callable[[], api.EngineStats]) -> None:
        items, self._items = self._items, []
        if self._publish is not None:
            now = stats()
            key = (now.running, now.waiting, now.prefills, now.prefilled_rows, now.aborted)
            if items or key != self._published:
                self._published = key
                self._publish([(row.request.request_id, item) for row, item in items], now)
            return
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for row, item in items:
            by_loop.setdefault(row.loop, []).append((row.events, item))
        for loop, batch in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, batch)
            except RuntimeError:  # that loop has closed: nobody is listening any more
                pass
