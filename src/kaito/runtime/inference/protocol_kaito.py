"""KAITO v0.3.2's `/chat` request and response, mapped onto engine sampling.

The request is KAITO's: `prompt` (text-generation) or `messages` (conversational), plus
`generate_kwargs` with KAITO's documented defaults (max_length 200 counting the prompt,
do_sample true, temperature 1.0, top_k 10). The answer is `{"Result": text}`. In conversational
mode KAITO returned `str()` of the last message of a transformers `Conversation`, i.e. the Python
repr of `{'role': 'assistant', 'content': ...}`; clients parse that, so we return the same.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kaito.runtime.inference.engine import InvalidRequest, SamplingParams
from kaito.runtime.inference.protocol_common import RequestModel

# KAITO's 400 texts (its tests and api_spec.json use them)
MISSING_PROMPT = "Text generation parameter prompt required"
MISSING_MESSAGES = "Conversational parameter messages required"
_INT64 = (-(1 << 63), (1 << 63) - 1)

# generate() arguments that KAITO clients send and that change nothing here, with the values
# that keep that true (anything else is refused, because we would not honour it)
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "early_stopping": (True, False), "num_beams": (1,), "typical_p": (1, 1.0), "pad_token_id": None,
    "eos_token_id": None, "num_return_sequences": (1,), "use_cache": (True,), "return_dict_in_generate": None,
}
_HONOURED = {"max_length", "max_new_tokens", "min_length", "min_new_tokens", "do_sample", "temperature", "top_k",
             "top_p", "min_p", "repetition_penalty", "seed", "ignore_eos", "stop_strings"}


class KaitoMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str


class KaitoChatRequest(RequestModel):
    # KAITO's model was pydantic's lax default ("true" is a boolean); unknown keys are ignored, as there
    model_config = ConfigDict(extra="ignore", strict=False, allow_inf_nan=False)

    prompt: str | None = None
    return_full_text: bool = True
    clean_up_tokenization_spaces: bool = False
    prefix: str | None = None
    handle_long_generation: str | None = None
    generate_kwargs: dict[str, Any] = Field(default_factory=dict)
    messages: list[KaitoMessage] | None = None


def build_kaito_sampling(kwargs: dict[str, Any], prompt_tokens: int) -> SamplingParams:
    """generate_kwargs -> SamplingParams; unknown or unsupported keys are a 400 naming the key."""
    for key, value in kwargs.items():
        if key in _HONOURED:
            continue
        if key in _NEUTRAL:
            allowed = _NEUTRAL[key]
            if allowed is None or value in allowed:
                continue
            raise InvalidRequest(f"generate_kwargs.{key}={value!r} is not supported by this server")
        raise InvalidRequest(f"generate_kwargs.{key} is not a supported generation parameter")
    if "max_new_tokens" in kwargs:
        max_new = compute_int(kwargs, "max_new_tokens")
    else:
        max_new = compute_int(kwargs, "max_length", 200) - prompt_tokens
    if "min_new_tokens" in kwargs:
        min_new = compute_int(kwargs, "min_new_tokens")
    else:
        min_new = max(compute_int(kwargs, "min_length", 0) - prompt_tokens, 0)
    do_sample = compute_bool(kwargs, "do_sample", True)
    temperature = compute_float(kwargs, "temperature", 1.0) if do_sample else 0.0
    top_k = compute_int(kwargs, "top_k", 10)
    top_p = compute_float(kwargs, "top_p", 1.0)
    min_p = compute_float(kwargs, "min_p", 0.0)
    penalty = compute_float(kwargs, "repetition_penalty", 1.0)
    seed = None if kwargs.get("seed") is None else compute_int(kwargs, "seed")
    if seed is not None and not _INT64[0] <= seed <= _INT64[1]:
        raise InvalidRequest("generate_kwargs.seed must fit in 64 bits (signed)")
    if max_new < 1:
        raise InvalidRequest(f"generate_kwargs.max_length must exceed the prompt length ({prompt_tokens} tokens)")
    if do_sample and temperature <= 0:
        raise InvalidRequest("generate_kwargs.temperature must be > 0 when do_sample is true")
    if not 0 < top_p <= 1 or not 0 <= min_p <= 1 or not 0 < penalty <= 1e4 or not 0 <= top_k < (1 << 31):
        raise InvalidRequest("generate_kwargs: top_p must be in (0, 1], min_p in [0, 1], 0 <= top_k < 2^31, "
                             "0 < repetition_penalty <= 10000")
    if not -1e4 <= temperature <= 1e4:
        raise InvalidRequest("generate_kwargs.temperature must be at most 10000")
    stops = kwargs.get("stop_strings")
    if stops is None:
        stops = ()
    elif isinstance(stops, str):
        stops = (stops,) if stops else ()  # an empty stop string would end every answer at once
    elif isinstance(stops, list) and all(isinstance(s, str) for s in stops):
        stops = tuple(s for s in stops if s)
    else:
        raise InvalidRequest(f"generate_kwargs.stop_strings must be a string or a list of strings, got {stops!r}")
    return SamplingParams(max_tokens=max_new, temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
                          repetition_penalty=penalty, seed=seed, stop=stops,
                          ignore_eos=compute_bool(kwargs, "ignore_eos", False), min_tokens=min(min_new, max_new))


# Clients send generate_kwargs as JSON, often built from strings ("false", "0.7"). Python's bool()
# and int() would read "false" as True and 5.5 as 5, so each value is checked against its key's type
# and a mismatch is a 400 naming `generate_kwargs.<key>`.
def compute_bool(kwargs: dict[str, Any], key: str, default: bool) -> bool:
    value = kwargs.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidRequest(f"generate_kwargs.{key} must be true or false, got {value!r}")


def compute_int(kwargs: dict[str, Any], key: str, default: int | None = None) -> int:
    value = kwargs.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidRequest(f"generate_kwargs.{key} must be an integer, got {value!r}")


def compute_float(kwargs: dict[str, Any], key: str, default: float) -> float:
    value = kwargs.get(key, default)
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise InvalidRequest(f"generate_kwargs.{key} must be a finite number, got {value!r}")
    return number


def build_kaito_result(pipeline: str, prompt: str, generated: str, return_full_text: bool) -> dict[str, str]:
    if pipeline == "conversational":
        return {"Result": str({"role": "assistant", "content": generated})}
    return {"Result": prompt + generated if return_full_text else generated}
