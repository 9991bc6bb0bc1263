"""Field errors: how every validation rule reports a problem.

A rule never raises; it returns FieldErrors whose `path` names the field the way a user writes it
in YAML (`resource.instanceType`, `inference.adapters[1].strength`), so the CLI, the webhook and
conditions all show the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
