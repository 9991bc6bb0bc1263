"""The OpenAI API's request shapes, bounded and typed as vLLM's server takes them, mapped to sampling.

Every field is typed strictly (a boolean is not a number; NaN and infinities are refused) and
bounded the way vLLM bounds it: temperature in [0, 2] (below 1e-5 is greedy), top_p in (0, 1],
min_p in [0, 1], presence/frequency penalties in [-2, 2], logit_bias values clamped to
[-100, 100], seeds within int64, logprobs up to 20. Fields we do not know are ignored with a
warning, as vLLM does. OpenAI features we do not implement (tools, audio, `suffix`, `best_of` > 1)
are refused by name rather than silently ignored. vLLM's extensions `top_k`, `min_p`,
`repetition_penalty`, `min_tokens` and `ignore_eos` are accepted under vLLM's names (the `openai`
client sends them through `extra_body`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kaito.runtime.inference.engine import SamplingParams
from kaito.runtime.inference.protocol_common import RequestModel

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
MAX_LOGPROBS = 20  # vLLM's default --max-logprobs
JSON_OBJECT_SCHEMA = '{"type": "object"}'  # what `response_format: json_object` means (as in vLLM)
Count = Annotated[int, Field(ge=1, le=INT64_MAX)]

# parameter -> the values that mean "not used" (those are accepted; anything else is refused by name)
_UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "tools": (None, []), "tool_choice": (None, "none", "auto"), "functions": (None, []),
    "function_call": (None, "none", "auto"), "audio": (None,), "modalities": (None, ["text"]),
    "prediction": (None,), "best_of": (None, 1), "suffix": (None, ""),
}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    include_usage: bool | None = None
    continuous_usage_stats: bool | None = None


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)
    name: str | None = None
    description: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_given(self):
        if self.type == "json_schema" and (self.json_schema is None or self.json_schema.json_schema is None):
            raise ValueError("response_format.json_schema.schema is required for type json_schema")
        return self


class OpenAIBase(RequestModel):
    model: str | None = None
    max_tokens: Count | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    stop: str | list[str] | None = None
    seed: Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)] | None = None
    n: Annotated[int, Field(ge=1, le=16)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    logit_bias: dict[str, float] | None = None
    response_format: ResponseFormat | None = None
    # vLLM extensions
    top_k: Annotated[int, Field(ge=-1, le=(1 << 31) - 1)] | None = None
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0.0, le=1e4)] | None = None
    min_tokens: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0
    ignore_eos: bool = False
    # declared only to be refused clearly
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    parallel_tool_calls: bool | None = None
    best_of: Any = None
    suffix: Any = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value):
        stops = [value] if isinstance(value, str) else (value or [])
        if any(not s for s in stops):
            raise ValueError("stop strings must not be empty")
        if len(stops) > 16:
            raise ValueError("at most 16 stop strings")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, value):
        for key, bias in (value or {}).items():
            if not key.strip().lstrip("-").isdigit() or int(key) < 0:
                raise ValueError(f"keys must be token ids (non-negative integers as strings), got {key!r}")
            if bias != bias:
                raise ValueError("values must be numbers")
        if value and len(value) > 1024:
            raise ValueError("at most 1024 entries")
        return value

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
        return bool(self.stream_options and self.stream_options.include_usage)

    def build_json_schema(self) -> str | None:
        fmt = self.response_format
        if fmt is None or fmt.type == "text":
            return None
        if fmt.type == "json_object":
            return JSON_OBJECT_SCHEMA
        return json.dumps(fmt.json_schema.json_schema)  # type: ignore[union-attr]

    def build_sampling(self, max_tokens: int, choice: int, logprobs: int | None = None,
                       prompt_logprobs: int | None = None) -> SamplingParams:
        stops = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        # n choices from one seed must differ; -1 means "no seed" (vLLM's rule)
        seed = None if self.seed is None or self.seed == -1 else self.seed + choice
        bias = tuple((int(k), min(max(v, -100.0), 100.0)) for k, v in (self.logit_bias or {}).items())
        return SamplingParams(
            max_tokens=max_tokens, temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p, top_k=max(self.top_k or 0, 0),
            min_p=self.min_p or 0.0, repetition_penalty=self.repetition_penalty or 1.0,
            presence_penalty=self.presence_penalty or 0.0, frequency_penalty=self.frequency_penalty or 0.0,
            logit_bias=bias, seed=seed, stop=stops, ignore_eos=self.ignore_eos,
            min_tokens=min(self.min_tokens, max_tokens), logprobs=logprobs, prompt_logprobs=prompt_logprobs,
            json_schema=self.build_json_schema(),
        )


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _content_where_needed(self):
        if self.role in ("system", "user", "developer", "tool") and self.content is None:
            raise ValueError(f"a {self.role} message needs `content`")
        return self

    def build_template_message(self) -> dict[str, str]:
        content = self.content
        if isinstance(content, list):
            content = "".join(part.text for part in content)
        role = "system" if self.role == "developer" else self.role
        return {"role": role, "content": content or ""}


class ChatCompletionRequest(OpenAIBase):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: Count | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=MAX_LOGPROBS)] | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    audio: Any = None
    modalities: Any = None
    prediction: Any = None
    reasoning_effort: str | None = None

    @model_validator(mode="after")
    def _top_logprobs_need_logprobs(self):
        if self.top_logprobs and not self.logprobs:
            raise ValueError("`top_logprobs` needs `logprobs` set to true")
        return self

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def wanted_logprobs(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None


class CompletionRequest(OpenAIBase):
    prompt: str | list[str] | list[Annotated[int, Field(ge=0, le=INT64_MAX)]] | list[list[int]]
    logprobs: Annotated[int, Field(ge=0, le=MAX_LOGPROBS)] | None = None
    echo: bool = False

    @property
    def requested_max_tokens(self) -> int:
        return self.max_tokens or 16  # OpenAI's documented default for completions

    def build_prompts(self) -> list[str | list[int]]:
        prompt = self.prompt
        if isinstance(prompt, str):
            return [prompt]
        if not prompt:
            raise ValueError("`prompt` is empty")
        if all(isinstance(p, int) for p in prompt):
            return [list(prompt)]  # type: ignore[arg-type]
        if len(prompt) > 64:
            raise ValueError("at most 64 prompts in one request")
        return list(prompt)  # type: ignore[arg-type]
