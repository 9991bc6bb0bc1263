"""What every generation route does, whatever its protocol: resolve, tokenize, run, time, stream.

Routes in `app.py` only parse a request model and pick a response shape; this module turns a
prompt into engine requests (one per choice), checks them all before any byte is sent (so a
full queue or a too-long prompt is a clean 4xx, never a broken stream), records metrics, and
cancels the engine's work when the client disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.metrics import RequestTimer, ServerMetrics


@dataclass(frozen=True, kw_only=True)
class ChoiceResult:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class InferenceService:
    def __init__(self, engine, metrics: ServerMetrics, model_aliases: tuple[str, ...]) -> None:
        self.engine = engine
        self.metrics = metrics
        self.model_aliases = model_aliases  # names that mean the default model

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

    def prepare(self, requests: list[api.GenerationRequest]) -> None:
        for request in requests:
            self.engine.check(request)

    @staticmethod
    def new_request_id(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex}"

    async def _events(self, request: api.GenerationRequest) -> AsyncIterator[api.TokenEvent]:
        timer = RequestTimer(self.metrics, time.monotonic)
        last: api.TokenEvent | None = None
        agen = self.engine.generate(request)
        try:
            async for event in agen:
                if event.token_ids:
                    timer.token(len(event.token_ids))
                last = event
                yield event
        finally:
            await agen.aclose()
            if last is not None and last.finish_reason is not None:
                timer.finish(last.finish_reason, last.prompt_tokens)
            else:
                await self.engine.cancel(request.request_id)
                timer.finish("abort", len(request.prompt_token_ids))

    async def collect(self, requests: list[api.GenerationRequest],
                      is_disconnected: Callable[[], object] | None = None) -> list[ChoiceResult]:
        """Run all choices to the end; if the client leaves first, cancel them."""
        async def one(request: api.GenerationRequest) -> ChoiceResult:
            parts: list[str] = []
            last = None
            async for event in self._events(request):
                parts.append(event.text)
                last = event
            assert last is not None and last.finish_reason is not None
            return ChoiceResult(text="".join(parts), finish_reason=last.finish_reason,
                                prompt_tokens=last.prompt_tokens, completion_tokens=last.completion_tokens)

        work = asyncio.gather(*(one(r) for r in requests))
        if is_disconnected is None:
            return await work
        watcher = asyncio.create_task(_watch_disconnect(is_disconnected))
        done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if work in done:
            watcher.cancel()
            return work.result()
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        raise ClientGone()

    async def merged_events(self, requests: list[api.GenerationRequest]) -> AsyncIterator[tuple[int, api.TokenEvent]]:
        """Events of all choices as they come, tagged with the choice index."""
        queue: asyncio.Queue = asyncio.Queue()

        async def pump(index: int, request: api.GenerationRequest) -> None:
            try:
                async for event in self._events(request):
                    await queue.put((index, event))
            except BaseException as exc:
                await queue.put((index, exc))
                raise
            finally:
                await queue.put((index, None))

        tasks = [asyncio.create_task(pump(i, r)) for i, r in enumerate(requests)]
        open_choices = len(tasks)
        try:
            while open_choices:
                index, item = await queue.get()
                if item is None:
                    open_choices -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield index, item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def _watch_disconnect(is_disconnected: Callable[[], object]) -> None:
    while not await is_disconnected():  # type: ignore[misc]
        await asyncio.sleep(0.25)


def build_sse(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"
