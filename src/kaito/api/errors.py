"""Field errors: how every validation rule reports a problem.

A rule never raises; it returns FieldErrors whose `path` names the field the way a user writes it
in YAML (`resource.instanceType`, `inference.adapters[1].strength`), so the CLI, the webhook and
conditions all show the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pydantic

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def errors_only(problems: list[FieldError]) -> list[FieldError]:
    return [p for p in problems if p.severity == "error"]


def warnings_only(problems: list[FieldError]) -> list[FieldError]:
    return [p for p in problems if p.severity == "warning"]


def format_loc(loc: tuple[str | int, ...]) -> str:
    """A pydantic error location as the user writes the path: `inference.adapters[0].strength`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"{err.get('msg', 'invalid value')}, got {err.get('input')!r}"
    got = err.get("input")
    shown = type(got).__name__ if isinstance(got, dict | list) else repr(got)
    return f"{err.get('msg', 'invalid value')} (got {shown[:80]})"


def validation_errors(exc: pydantic.ValidationError) -> list[FieldError]:
    """A parse failure as field errors, one per bad field, with the field's YAML path."""
    return [FieldError(format_loc(tuple(e["loc"])), _describe(e)) for e in exc.errors()]
