"""What every generation route does, whatever its protocol: resolve, tokenize, admit, run, time, stream.

Routes in `app.py` only parse a request model and pick a response shape; this module turns a
prompt into engine requests (one per choice) and, before any byte is sent, checks them all and
admits them to the queue (so a full queue or a too-long prompt is a clean 4xx, never a broken
stream). `start` hands back a `Run` whose `close()` cancels whatever is unfinished and releases its
room in the queue; it runs when the answer is complete, when the client disconnects, and when a
streamed response ends without ever starting its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.admission import Admission, Ticket
from kaito.runtime.inference.metrics import RequestTimer, ServerMetrics


@dataclass(frozen=True, kw_only=True)
class ChoiceResult:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    events: tuple[api.TokenEvent, ...] = ()  # every event, for logprobs


@dataclass(kw_only=True)
class Run:
    """One admitted request: its choices' event streams, and how to end them all."""

    service: InferenceService
    requests: list[api.GenerationRequest]
    streams: list[AsyncIterator[api.TokenEvent]]
    ticket: Ticket
    finished: set[int] = field(default_factory=set)
    closed: bool = False

    async def close(self) -> None:
        """Cancel unfinished choices, close their streams, release the queue room (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for index, (request, stream) in enumerate(zip(self.requests, self.streams, strict=True)):
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
            if index not in self.finished:
                with contextlib.suppress(Exception):
                    await self.service.engine.cancel(request.request_id)
        self.ticket.release()


class InferenceService:
    def __init__(self, engine: api.EngineClient, metrics: ServerMetrics, model_aliases: tuple[str, ...],
                 admission: Admission) -> None:
        self.engine = engine
        self.metrics = metrics
        self.model_aliases = model_aliases  # names that mean the default model
        self.admission = admission

    def resolve_adapter(self, model: str | None) -> str | None:
        info = self.engine.model_info()
        if model is None or model in self.model_aliases or model == info.served_model_name:
            return None
        if model in info.adapters:
            return model
        raise api.UnknownModel(f"The model `{model}` does not exist; see GET /v1/models")

    def build_chat_prompt(self, messages: list[dict[str, str]]) -> str:
        tokenizer = self.engine.tokenizer()
        if not getattr(tokenizer, "chat_template", None):
            raise api.InvalidRequest("this model has no chat template; start the server with --chat-template")
        try:
            return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except Exception as exc:  # a Jinja template may raise anything for odd message lists
            raise api.InvalidRequest(f"messages do not fit the model's chat template: {exc}") from None

    def tokenize(self, prompt: str | list[int], add_special_tokens: bool = True) -> tuple[int, ...]:
        if isinstance(prompt, list):
            return tuple(prompt)
        return tuple(self.engine.tokenizer()(prompt, add_special_tokens=add_special_tokens).input_ids)

    def compute_max_tokens(self, prompt_ids: tuple[int, ...], requested: int | None) -> int:
        limit = self.engine.model_info().max_model_len
        if len(prompt_ids) >= limit:
            raise api.ContextTooLong(f"This model's maximum context length is {limit} tokens; the prompt "
                                     f"has {len(prompt_ids)} tokens")
        return requested if requested is not None else limit - len(prompt_ids)

    @staticmethod
    def new_request_id(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex}"

    def start(self, requests: list[api.GenerationRequest]) -> Run:
        """Check, admit and queue every choice now; raise the `EngineError` (4xx) if any cannot run."""
        for request in requests:
            self.engine.check(request)
        ticket = self.admission.admit(len(requests))
        streams: list[AsyncIterator[api.TokenEvent]] = []
        try:
            for request in requests:
                streams.append(self._timed(request, self.engine.generate(request)))
        except BaseException:
            ticket.release()
            raise
        return Run(service=self, requests=requests, streams=streams, ticket=ticket)

    async def _timed(self, request: api.GenerationRequest, events: AsyncIterator[api.TokenEvent]
                     ) -> AsyncIterator[api.TokenEvent]:
        timer = RequestTimer(self.metrics, time.monotonic)
        last: api.TokenEvent | None = None
        try:
            async for event in events:
                if event.token_ids:
                    timer.token(len(event.token_ids))
                last = event
                yield event
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
            if last is not None and last.finish_reason is not None:
                timer.finish(last.finish_reason, last.prompt_tokens)
            else:
                timer.finish("abort", len(request.prompt_token_ids))

    async def collect(self, run: Run, disconnected: Callable[[], Awaitable[None]] | None = None
                      ) -> list[ChoiceResult]:
        """Run all choices to the end; if the client leaves first (`disconnected` returns), cancel."""
        async def one(index: int) -> ChoiceResult:
            events = [event async for event in run.streams[index]]
            run.finished.add(index)
            if not events:
                raise api.EngineError("the engine ended the request without any output")
            last = events[-1]
            return ChoiceResult(text="".join(e.text for e in events), finish_reason=last.finish_reason or "abort",
                                prompt_tokens=last.prompt_tokens, completion_tokens=last.completion_tokens,
                                events=tuple(events))

        try:
            work = asyncio.ensure_future(asyncio.gather(*(one(i) for i in range(len(run.streams)))))
            if disconnected is None:
                return await work
            watcher = asyncio.ensure_future(disconnected())
            done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                watcher.cancel()
                return work.result()
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            raise ClientGone()
        finally:
            await run.close()

    async def merged_events(self, run: Run) -> AsyncIterator[list[tuple[int, api.TokenEvent]]]:
        """Events of all choices as they come, tagged with the choice index, in batches: what is ready."""
        if len(run.streams) == 1:  # the common case: no pump task, no second queue
            try:
                async for event in run.streams[0]:
                    yield [(0, event)]
                run.finished.add(0)
            finally:
                await run.close()
            return
        queue: asyncio.Queue = asyncio.Queue()

        async def pump(index: int) -> None:
            try:
                async for event in run.streams[index]:
                    await queue.put((index, event))
                run.finished.add(index)
            except BaseException as exc:
                await queue.put((index, exc))
                raise
            finally:
                await queue.put((index, None))

        tasks = [asyncio.create_task(pump(i)) for i in range(len(run.streams))]
        open_choices = len(tasks)
        try:
            while open_choices:
                ready = [await queue.get()]
                while not queue.empty():
                    ready.append(queue.get_nowait())
                batch = []
                for index, item in ready:
                    if item is None:
                        open_choices -= 1
                    elif isinstance(item, BaseException):
                        if batch:
                            yield batch
                        raise item
                    else:
                        batch.append((index, item))
                if batch:
                    yield batch
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await run.close()


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


def build_sse(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"
