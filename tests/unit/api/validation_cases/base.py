"""The building blocks of the admission table: a case, Workspace makers, shared values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.unit.api.factories import DELETE, adapter, ws  # noqa: F401 - adapter is re-exported to the case modules


@dataclass
class Case:
    id: str
    rule: str
    new: dict[str, Any]
    expect: list[tuple[str, str]] = field(default_factory=list)
    old: dict[str, Any] | None = None


def I(**kw) -> dict:  # noqa: E743 - short names keep the table readable
    return ws("inference", {k.replace("__", "."): v for k, v in kw.items()})


def T(**kw) -> dict:
    return ws("tuning", {k.replace("__", "."): v for k, v in kw.items()})


def P(base: str, paths: dict[str, Any]) -> dict:
    return ws(base, paths)


BOTH = P("inference", {"tuning": T()["tuning"]})
NEITHER = P("inference", {"inference": DELETE})
INPUT = "tuning.input"
OUTPUT = "tuning.output"
ADAPTERS = "inference.adapters"
EXPR_NOTIN = [{"key": "apps", "operator": "NotIn", "values": ["x"]}]
EXPR_IN1 = [{"key": "apps", "operator": "In", "values": ["test"]}]
EXPR_IN2 = [{"key": "apps", "operator": "In", "values": ["a", "b"]}]
TEMPLATE = {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}
TEMPLATE2 = {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
SEL = "resource.labelSelector"
