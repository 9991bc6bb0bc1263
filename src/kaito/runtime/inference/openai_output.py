"""The OpenAI API's response shapes: whole answers, stream chunks, usage, errors, models, logprobs.

Log-probabilities come from the engine as token ids; here they become OpenAI's two shapes: chat's
`{"content": [{token, logprob, bytes, top_logprobs}]}` and completions' `{tokens, token_logprobs,
top_logprobs, text_offset}` (with `echo`, the prompt's tokens first, the very first one without a
log-probability, as OpenAI and vLLM answer).
"""

from __future__ import annotations

import functools
import time

from kaito.runtime.inference.engine import TokenLogprob


def build_error(message: str, kind: str, code: str | int | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def build_usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def build_chat_response(rid: str, model: str, choices: list[tuple[str, str, dict | None]], usage: dict) -> dict:
    return {
        "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": logprobs,
                     "finish_reason": reason} for i, (text, reason, logprobs) in enumerate(choices)],
        "usage": usage,
    }


def build_completion_response(rid: str, model: str, choices: list[tuple[str, str, dict | None]],
                              usage: dict) -> dict:
    return {
        "id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
        "choices": [{"index": i, "text": text, "logprobs": logprobs, "finish_reason": reason}
                    for i, (text, reason, logprobs) in enumerate(choices)],
        "usage": usage,
    }


def build_chat_chunk(rid: str, model: str, created: int, index: int, delta: dict, finish: str | None,
                     logprobs: dict | None = None) -> dict:
    return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}


def build_completion_chunk(rid: str, model: str, created: int, index: int, text: str, finish: str | None,
                           logprobs: dict | None = None) -> dict:
    return {"id": rid, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}]}


def build_usage_chunk(rid: str, model: str, created: int, kind: str, usage: dict) -> dict:
    return {"id": rid, "object": kind, "created": created, "model": model, "choices": [], "usage": usage}


def build_model(name: str, parent: str | None, max_model_len: int, created: int) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": "kaito", "root": name,
            "parent": parent, "max_model_len": max_model_len}


def build_model_list(default: str, adapters: tuple[str, ...], max_model_len: int) -> dict:
    created = int(time.time())
    data = [build_model(default, None, max_model_len, created)]
    data += [build_model(name, default, max_model_len, created) for name in adapters]
    return {"object": "list", "data": data}


class LogprobFormatter:
    """Token ids to OpenAI's logprob objects, with each token's text decoded once."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self.token_text = functools.lru_cache(maxsize=65536)(self._decode)

    def _decode(self, token_id: int) -> str:
        return self._tokenizer.decode([token_id])

    def _entry(self, token_id: int, logprob: float) -> dict:
        text = self.token_text(token_id)
        return {"token": text, "logprob": _finite(logprob), "bytes": list(text.encode("utf-8", "replace"))}

    def chat(self, items: list[TokenLogprob]) -> dict:
        return {"content": [{**self._entry(lp.token_id, lp.logprob),
                             "top_logprobs": [self._entry(t, v) for t, v in lp.top]} for lp in items]}

    def completion(self, items: list[TokenLogprob | None], offset: int = 0) -> dict:
        tokens, values, tops, offsets = [], [], [], []
        for item in items:
            if item is None:  # the prompt's first token: nothing before it to condition on
                continue
            text = self.token_text(item.token_id)
            tokens.append(text)
            values.append(_finite(item.logprob))
            tops.append({self.token_text(t): _finite(v) for t, v in item.top} if item.top else None)
            offsets.append(offset)
            offset += len(text)
        return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}

    def echoed_prompt(self, prompt: tuple[int, ...], items: tuple[TokenLogprob | None, ...]) -> dict:
        """The prompt's tokens as completions' logprobs: the first with `null`, as OpenAI answers."""
        out = self.completion([i for i in items if i is not None])
        if prompt:
            first = self.token_text(prompt[0])
            out = {"tokens": [first, *out["tokens"]], "token_logprobs": [None, *out["token_logprobs"]],
                   "top_logprobs": [None, *out["top_logprobs"]],
                   "text_offset": [0, *(o + len(first) for o in out["text_offset"])]}
        return out


def merge_completion_logprobs(first: dict, second: dict) -> dict:
    shift = (first["text_offset"][-1] + len(first["tokens"][-1])) if first["tokens"] else 0
    return {"tokens": first["tokens"] + second["tokens"],
            "token_logprobs": first["token_logprobs"] + second["token_logprobs"],
            "top_logprobs": first["top_logprobs"] + second["top_logprobs"],
            "text_offset": first["text_offset"] + [o + shift for o in second["text_offset"]]}


def _finite(value: float) -> float:
    return max(value, -9999.0)  # JSON has no -Infinity; vLLM clamps the same way
