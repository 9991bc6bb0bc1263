"""The OpenAI API's request and response shapes, and their mapping to engine sampling.

Only what we honour is accepted. OpenAI parameters we do not implement (tools, logprobs,
logit_bias, ...) are declared so that setting one gets a 400 naming it, instead of being silently
ignored. vLLM's extensions `top_k`, `repetition_penalty`, `min_tokens` and `ignore_eos` are
accepted under vLLM's names (the `openai` client sends them through `extra_body`).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kaito.runtime.inference.engine import SamplingParams

# parameter -> the values that mean "not used" (those are accepted)
_UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "tools": (None, []), "tool_choice": (None, "none"), "functions": (None, []), "function_call": (None, "none"),
    "parallel_tool_calls": (None, False, True), "logit_bias": (None, {}), "logprobs": (None, False, 0),
    "top_logprobs": (None, 0), "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0),
    "audio": (None,), "modalities": (None, ["text"]), "prediction": (None,), "reasoning_effort": (None,),
    "web_search_options": (None,), "best_of": (None, 1), "echo": (None, False), "suffix": (None, ""),
    "response_format": (None, {"type": "text"}),
}


class OpenAIBase(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=16)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None
    # vLLM extensions
    top_k: int = Field(default=0, ge=-1)
    repetition_penalty: float = Field(default=1.0, gt=0.0)
    min_tokens: int = Field(default=0, ge=0)
    ignore_eos: bool = False
    # declared only to be refused clearly
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    parallel_tool_calls: Any = None
    logit_bias: Any = None
    logprobs: Any = None
    top_logprobs: Any = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    best_of: Any = None
    echo: Any = None
    suffix: Any = None
    response_format: Any = None

    @model_validator(mode="after")
    def _refuse_unsupported(self):
        for name, accepted in _UNSUPPORTED.items():
            value = getattr(self, name, None)
            if value not in accepted:
                raise ValueError(f"parameter `{name}` is not supported by this server")
        if self.stream_options is not None and not self.stream:
            raise ValueError("`stream_options` is only allowed when `stream` is true")
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.get("include_usage"))

    def build_sampling(self, max_tokens: int, choice: int) -> SamplingParams:
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        seed = None if self.seed is None else self.seed + choice  # n choices from one seed must differ
        return SamplingParams(
            max_tokens=max_tokens, temperature=self.temperature, top_p=self.top_p,
            top_k=max(self.top_k, 0), repetition_penalty=self.repetition_penalty, seed=seed, stop=stops,
            ignore_eos=self.ignore_eos, min_tokens=min(self.min_tokens, max_tokens),
        )


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def build_template_message(self) -> dict[str, str]:
        content = self.content
        if isinstance(content, list):
            content = "".join(part.text for part in content)
        role = "system" if self.role == "developer" else self.role
        return {"role": role, "content": content or ""}


class ChatCompletionRequest(OpenAIBase):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    audio: Any = None
    modalities: Any = None
    prediction: Any = None
    reasoning_effort: Any = None
    web_search_options: Any = None

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(OpenAIBase):
    prompt: str | list[str] | list[int] | list[list[int]]

    @property
    def requested_max_tokens(self) -> int:
        return self.max_tokens or 16  # OpenAI's documented default for completions

    def build_prompts(self) -> list[str | list[int]]:
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if prompt and all(isinstance(p, int) for p in prompt):
            return [list(prompt)]  # type: ignore[arg-type]
        if not prompt:
            raise ValueError("`prompt` is empty")
        return list(prompt)  # type: ignore[arg-type]


def build_error(message: str, kind: str, code: str | int | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def build_usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def build_chat_response(rid: str, model: str, choices: list[tuple[str, str]], usage: dict) -> dict:
    return {
        "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                     "finish_reason": reason} for i, (text, reason) in enumerate(choices)],
        "usage": usage,
    }


def build_completion_response(rid: str, model: str, choices: list[tuple[str, str]], usage: dict) -> dict:
    return {
        "id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
        "choices": [{"index": i, "text": text, "logprobs": None, "finish_reason": reason}
                    for i, (text, reason) in enumerate(choices)],
        "usage": usage,
    }


def build_chat_chunk(rid: str, model: str, created: int, index: int, delta: dict,
                     finish: str | None) -> dict:
    return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def build_completion_chunk(rid: str, model: str, created: int, index: int, text: str,
                           finish: str | None) -> dict:
    return {"id": rid, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish}]}


def build_usage_chunk(rid: str, model: str, created: int, kind: str, usage: dict) -> dict:
    return {"id": rid, "object": kind, "created": created, "model": model, "choices": [], "usage": usage}


def build_model_list(default: str, adapters: tuple[str, ...], max_model_len: int) -> dict:
    created = int(time.time())
    data = [{"id": default, "object": "model", "created": created, "owned_by": "kaito", "root": default,
             "parent": None, "max_model_len": max_model_len}]
    data += [{"id": name, "object": "model", "created": created, "owned_by": "kaito", "root": name,
              "parent": default, "max_model_len": max_model_len} for name in adapters]
    return {"object": "list", "data": data}
