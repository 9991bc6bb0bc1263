"""Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`.

The response is only built once the request was checked and admitted (see `service.start`), so
every refusal is an HTTP status before the stream; what can still go wrong mid-stream (a row the
engine failed) travels as an error event, followed by `[DONE]`. Events that are ready together are
written in one send, and the run is closed (cancelled, its queue room released) however the
response ends, even when its body never started because the client left first.
"""

from __future__ import annotations

import time

from starlette.responses import StreamingResponse

from kaito.runtime.inference import engine as api
from kaito.runtime.inference import openai_output as out
from kaito.runtime.inference.service import Run, build_sse


class RunStream(StreamingResponse):
    """A streamed response that closes its run when the response ends, whatever happened."""

    def __init__(self, body, run: Run) -> None:
        super().__init__(body, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.run = run

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.run.close()


def build_stream(run: Run, events, *, rid: str, model: str, chat: bool, usage_prompt_tokens: int | None,
                 formatter: out.LogprobFormatter | None, echo: list[str] | None = None,
                 echo_logprobs: bool = False) -> RunStream:
    """`usage_prompt_tokens` is set when the client asked for a usage chunk (`stream_options`);
    `echo` holds each choice's prompt text (completions with `echo`)."""
    created = int(time.time())
    kind = "chat.completion.chunk" if chat else "text_completion"
    choices = len(run.streams)

    def chunk(index: int, text: str, finish: str | None, logprobs: list, prompt_lp=None) -> str:
        lp = None
        if formatter is not None and chat:
            lp = formatter.chat(logprobs) if logprobs else None
        elif formatter is not None:
            lp = formatter.completion(logprobs)
            if prompt_lp is not None:
                lp = out.merge_completion_logprobs(prompt_lp, lp)
        if chat:
            delta = {"content": text} if text else {}
            return build_sse(out.build_chat_chunk(rid, model, created, index, delta, finish, lp))
        return build_sse(out.build_completion_chunk(rid, model, created, index, text, finish, lp))

    async def body():
        completion_tokens: dict[int, int] = {}
        pending: dict[int, list] = {}  # logprobs of tokens whose text is still held back
        echoed: set[int] = set()
        if chat:
            yield "".join(build_sse(out.build_chat_chunk(rid, model, created, i, {"role": "assistant", "content": ""},
                                                         None)) for i in range(choices))
        try:
            async for ready in events:
                parts = []
                for index, event in ready:
                    completion_tokens[index] = event.completion_tokens
                    pending.setdefault(index, []).extend(event.logprobs)
                    prefix, prompt_lp = "", None
                    if echo is not None and index not in echoed:
                        echoed.add(index)
                        prefix = echo[index]
                        if echo_logprobs and formatter is not None and event.prompt_logprobs is not None:
                            prompt_lp = formatter.echoed_prompt(run.requests[index].prompt_token_ids,
                                                                event.prompt_logprobs)
                    if not (prefix or event.text) and event.finish_reason is None:
                        continue
                    parts.append(chunk(index, prefix + event.text, event.finish_reason, pending.pop(index, []),
                                       prompt_lp))
                if parts:
                    yield "".join(parts)
        except api.EngineError as exc:  # headers are sent: the error travels in the stream
            yield build_sse(out.build_error(str(exc), "server_error" if exc.status >= 500 else
                                            "invalid_request_error", exc.code))
        if usage_prompt_tokens is not None:
            usage = out.build_usage(usage_prompt_tokens, sum(completion_tokens.values()))
            yield build_sse(out.build_usage_chunk(rid, model, created, kind, usage))
        yield build_sse("[DONE]")

    return RunStream(body(), run)
