"""`kaito.sh/v1beta1` ↔ hub. v1beta1 holds every hub field, so this is a copy with its defaults."""

from __future__ import annotations

from kaito.api import hub
from kaito.api.v1beta1.types import Workspace, default_workspace

_WIRE_ONLY = ("apiVersion", "kind")


def to_hub(ws: Workspace) -> hub.Workspace:
    data = default_workspace(ws).model_dump(by_alias=True, exclude_none=True)
    for key in _WIRE_ONLY:
        data.pop(key, None)
    return hub.Workspace.model_validate(data)


def from_hub(ws: hub.Workspace) -> Workspace:
    return Workspace.model_validate(ws.model_dump(by_alias=True, exclude_none=True))
