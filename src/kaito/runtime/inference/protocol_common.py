"""What every request body goes through at the door, whatever its protocol (OpenAI or KAITO's /chat).

- Text that JSON allows but UTF-8 cannot encode (a lone surrogate escape such as "\\ud800") is
  refused with a 400 naming the field, before a tokenizer (or a JSON encoder writing an error
  message that echoes it) can fail on it.
- Fields a model does not declare are ignored, as vLLM's server does, and logged: a warning the
  first time a name is seen, then at debug level, so a client sending the same extra field on
  every request does not flood the log.
- Numbers are strict: a boolean is not a number, NaN and infinities are refused.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

log = logging.getLogger("kaito.runtime.inference")
_WARNED: set[str] = set()
_MAX_WARNED = 1024  # field names remembered, so a fuzzer cannot grow the set without bound


def find_unencodable(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) in `value` that UTF-8 cannot encode, else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and find_unencodable(key) is not None:
                return f"{path + '.' if path else ''}{safe_text(key)} (a key)"
            found = find_unencodable(item, child)
            if found:
                return safe_text(found)
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unencodable(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def safe_text(text: str) -> str:
    """`text` with anything UTF-8 cannot encode written as an escape (for messages that echo input)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def warn_ignored(model: str, names: set[str]) -> None:
    new = sorted(n for n in names if n not in _WARNED)
    if new:
        if len(_WARNED) < _MAX_WARNED:
            _WARNED.update(new)
        log.warning("%s: ignoring fields this server does not use: %s", model,
                    json.dumps([safe_text(n) for n in new]))
    else:
        log.debug("%s: ignoring fields %s", model, sorted(safe_text(n) for n in names))


class RequestModel(BaseModel):
    """Base of request bodies: strict numbers, unknown fields ignored with a warning, UTF-8 only."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False, protected_namespaces=())

    @model_validator(mode="wrap")
    @classmethod
    def _at_the_door(cls, data: Any, handler):
        if isinstance(data, dict):
            bad = find_unencodable(data)
            if bad is not None:
                raise ValueError(f"{bad}: text is not valid UTF-8 (an unpaired surrogate escape)")
        result = handler(data)
        if isinstance(data, dict):
            known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
            extra = {k for k in data if isinstance(k, str)} - known
            if extra:
                warn_ignored(cls.__name__, extra)
        return result
