"""What an older version cannot hold travels in one annotation, so conversions lose nothing.

As Kubernetes' own conversions do (autoscaling/v1 keeps v2's metrics in an annotation), converting
a hub Workspace to a version that lacks some of its fields moves those fields into annotation
`conversion.kaito.sh/hub-fields`, and converting back moves them out again. The annotation also
records which fields were *absent* where the older version would default them (v1alpha1 defaults
`instanceType`; a v1beta1 object may have none): when the object comes back with exactly that
default value, the field is absent again. A value the user changed meanwhile wins over the record.

Pure functions over JSON-shaped dicts; the wire modules decide which paths they stash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANNOTATION = "conversion.kaito.sh/hub-fields"
ANNOTATIONS_PATH = "metadata.annotations"
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

Path = tuple[str | int, ...]


def parse_path(path: str) -> Path:
    """`inference.adapters[1].strength` → ("inference", "adapters", 1, "strength")."""
    return tuple(m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _PART.finditer(path))


def format_path(parts: Path) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def get_path(data: Any, parts: Path) -> Any:
    """The value at `parts`, or None when any step is missing."""
    node = data
    for part in parts:
        if isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                return None
        elif not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def pop_path(data: Any, parts: Path) -> Any:
    """Remove and return the value at `parts` (None when absent)."""
    parent = get_path(data, parts[:-1])
    if isinstance(parent, dict) and parts[-1] in parent:
        return parent.pop(parts[-1])
    return None


def put_path(data: dict[str, Any], parts: Path, value: Any, anchor: int) -> bool:
    """Set `parts` to `value`; mappings below the first `anchor` parts are created as needed.

    Returns False (and changes nothing) when the anchor itself is gone: a field whose owner the
    user removed meanwhile is not brought back on its own.
    """
    if anchor and not isinstance(get_path(data, parts[:anchor]), dict):
        return False
    node: Any = data
    for part in parts[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                return False
            node = node[part]
            continue
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return True


@dataclass(frozen=True)
class Stashed:
    """A field the older version lacks: its path and how much of the path must still exist."""

    path: str
    anchor: int  # leading path parts that must exist to restore it (0: create from the root)


@dataclass(frozen=True)
class Defaulted:
    """A field the older version defaults to `value` when absent."""

    pattern: str  # a path; `[*]` stands for every index of a list
    value: Any


def _expand(data: Any, pattern: str) -> list[Path]:
    """Concrete paths of `pattern` in `data` (one per list element for `[*]`)."""
    if "[*]" not in pattern:
        return [parse_path(pattern)]
    head, _, tail = pattern.partition("[*]")
    items = get_path(data, parse_path(head))
    if not isinstance(items, list):
        return []
    return [p for i in range(len(items)) for p in _expand(data, f"{head}[{i}]{tail}")]


def stash(data: dict[str, Any], stashed: tuple[Stashed, ...], defaulted: tuple[Defaulted, ...]) -> None:
    """Move `stashed` fields of `data` into the annotation and record defaulted-but-absent fields.

    `data` is a JSON-shaped dict of the whole object, changed in place. Nothing is written when
    there is nothing to carry, so objects that fit the older version are unchanged.
    """
    carried = {}
    for field in stashed:
        value = pop_path(data, parse_path(field.path))
        if value is not None:
            carried[field.path] = value
    absent = []
    for field in defaulted:
        for parts in _expand(data, field.pattern):
            owner = get_path(data, parts[:-1])
            if isinstance(owner, dict) and owner.get(parts[-1]) is None:
                absent.append(format_path(parts))
    if not carried and not absent:
        return
    meta = data.setdefault("metadata", {})
    if meta.get("annotations") is None:
        absent.append(ANNOTATIONS_PATH)
        meta["annotations"] = {}
    payload = {"set": carried, "absent": absent}
    meta["annotations"][ANNOTATION] = json.dumps(payload, sort_keys=True, separators=(",", ":"))


def restore(data: dict[str, Any], stashed: tuple[Stashed, ...], defaulted: tuple[Defaulted, ...]) -> None:
    """Undo `stash` on `data` (in place): the carried fields return, the annotation goes.

    A malformed annotation is dropped and ignored: conversion must always answer.
    """
    annotations = (data.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict) or ANNOTATION not in annotations:
        return
    raw = annotations.pop(ANNOTATION)
    try:
        payload = json.loads(raw)
    except (TypeError, ValueError):
        payload = {}
    carried = payload.get("set") if isinstance(payload, dict) else None
    absent = payload.get("absent") if isinstance(payload, dict) else None
    anchors = {field.path: field.anchor for field in stashed}
    for path, value in (carried or {}).items() if isinstance(carried, dict) else ():
        if path in anchors and get_path(data, parse_path(path)) is None:
            put_path(data, parse_path(path), value, anchors[path])
    defaults = {field.pattern: field.value for field in defaulted}
    for path in absent if isinstance(absent, list) else ():
        if not isinstance(path, str):
            continue
        if path == ANNOTATIONS_PATH:
            if not annotations:
                data["metadata"].pop("annotations", None)
            continue
        parts = parse_path(path)
        pattern = re.sub(r"\[\d+\]", "[*]", path)
        if pattern in defaults and get_path(data, parts) == defaults[pattern]:
            pop_path(data, parts)
