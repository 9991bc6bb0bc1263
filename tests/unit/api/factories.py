"""Workspace factories for the admission tests: a valid base plus dotted-path overrides."""

from __future__ import annotations

import copy
import re
from typing import Any

DELETE = object()
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def set_path(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or, with DELETE, remove) `a.b[0].c` in `doc`, creating mappings on the way."""
    parts = [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _PART.finditer(path)]
    node: Any = doc
    for part in parts[:-1]:
        if isinstance(part, str) and part not in node:
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


def _apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for path, value in overrides.items():
        set_path(doc, path, value if value is DELETE else copy.deepcopy(value))
    return doc


INFERENCE = {
    "apiVersion": "kaito.sh/v1alpha1",
    "kind": "Workspace",
    "metadata": {"name": "ws-inference", "namespace": "default"},
    "resource": {"instanceType": "Standard_NC12s_v3", "labelSelector": {"matchLabels": {"apps": "test"}}},
    "inference": {"preset": {"name": "test-validation"}},
}

TUNING = {
    "apiVersion": "kaito.sh/v1alpha1",
    "kind": "Workspace",
    "metadata": {"name": "ws-tuning", "namespace": "default"},
    "resource": {
        "instanceType": "Standard_NC24ads_A100_v4",
        "labelSelector": {"matchLabels": {"app": "tune"}},
    },
    "tuning": {
        "preset": {"name": "test-validation"},
        "method": "lora",
        "input": {"urls": ["https://example.com/data.parquet"]},
        "output": {"image": "registry.example.com/adapters/out:0.0.1", "imagePushSecret": "push"},
    },
}


def adapter(
    name: str = "adapter-a", image: str = "registry.example.com/adapters/a:0.0.1", **extra: Any
) -> dict:
    out: dict[str, Any] = {"source": {"name": name, "image": image}}
    out.update(extra)
    return out


def inference_ws(**overrides: Any) -> dict[str, Any]:
    """Keys are dotted paths (`resource.count`, `inference.adapters`) mapped to values."""
    return _apply(INFERENCE, overrides)


def tuning_ws(**overrides: Any) -> dict[str, Any]:
    return _apply(TUNING, overrides)


def ws(base: str, overrides: dict[str, Any]) -> dict[str, Any]:
    return _apply(INFERENCE if base == "inference" else TUNING, overrides)
