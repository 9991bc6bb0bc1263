"""Workspace revisions: the spec hash of §3.3, ControllerRevisions, and which to keep.

A revision changes only when `resource`, `inference` or `tuning` changes — never on metadata,
labels, annotations or status — so editing a Workspace's labels does not roll its pods. Workloads
carry the revision number in `workspace.kaito.io/revision`; the controller compares it to decide
whether a workload is current (a current one is left alone, so a user's hand edit survives).

The hash follows KAITO's recipe: sha256 over each section encoded as compact JSON plus a newline,
`null` for an absent section, struct keys in the API's declared field order, map keys sorted, empty
fields omitted, and Go's HTML escaping. It is
meant to match KAITO's for the same spec, but nothing here depends on byte equality with Go: a
mismatch after migrating from KAITO would cost one extra revision, nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kaito.api import labels
from kaito.api.hub import Workspace
from kaito.manifests import ownership

MAX_REVISION_HISTORY = 10  # KAITO's MaxRevisionHistoryLimit
_SECTIONS = ("resource", "inference", "tuning")
# Go's encoding/json escapes these even in plain strings (SetEscapeHTML defaults to true).
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def build_spec_sections(ws: Workspace) -> dict[str, Any]:
    """The three hashed sections as JSON-shaped values (None for an absent one)."""
    out: dict[str, Any] = {}
    for section in _SECTIONS:
        model = getattr(ws, section)
        out[section] = None if model is None else model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def _go_shape(value: Any) -> Any:
    """The value as Go's encoder would see it: struct fields in declared order, nil and empty
    (omitempty) fields left out, map keys sorted. Sorting also makes the hash independent of the
    key order a user wrote, or the API server returned, in `matchLabels` or a pod template."""
    if isinstance(value, BaseModel):
        out = {}
        for name, info in type(value).model_fields.items():
            item = _go_shape(getattr(value, name))
            if item is None or item == [] or item == {}:
                continue
            out[info.alias or name] = item
        return out
    if isinstance(value, dict):
        return {str(k): _go_shape(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_go_shape(v) for v in value]
    return value


def _encode_go_json(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in _GO_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text + "\n"  # json.Encoder.Encode appends a newline after each value


def compute_revision_hash(ws: Workspace) -> str:
    """Hex sha256 of the Workspace's spec sections (§3.3); stable under metadata changes."""
    return compute_go_json_hash(*(getattr(ws, section) for section in _SECTIONS))


def compute_go_json_hash(*values: Any) -> str:
    """Hex sha256 of each value encoded as Go's `json.Encoder` does (KAITO's revision recipe)."""
    payload = "".join(_encode_go_json(_go_shape(value)) for value in values)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def revision_name(ws_name: str, spec_hash: str, length: int = 5) -> str:
    """KAITO's ControllerRevision name `<ws>-<hash[:5]>`."""
    return f"{ws_name}-{spec_hash[:length]}"


def build_controller_revision(ws: Workspace, spec_hash: str, number: int, *, name: str | None = None) -> dict[str, Any]:
    """The `apps/v1` ControllerRevision recording one spec of `ws`."""
    meta = ownership.build_metadata(
        ws,
        name or revision_name(ws.name, spec_hash),
        extra_labels={labels.LABEL_REVISION_WORKSPACE_NAME: ws.name},
        annotations={labels.ANNOTATION_HASH: spec_hash},
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": meta,
        "data": build_spec_sections(ws),
        "revision": number,
    }


@dataclass(frozen=True, kw_only=True)
class RevisionPlan:
    """What the controller should do about revisions for the current spec."""

    spec_hash: str
    name: str
    number: int
    create: dict[str, Any] | None  # the ControllerRevision to create, None when one already records this spec
    delete: tuple[str, ...]  # names of the oldest revisions beyond the history limit


def plan_next_revision(owner_name: str, spec_hash: str, existing: Iterable[Mapping[str, Any]], *,
                       hash_annotation: str, build: Callable[[str, int], dict[str, Any]]) -> RevisionPlan:
    """Reuse the revision whose `hash_annotation` records `spec_hash`, or make the next one
    (`build(name, number)`) and trim the oldest beyond `MAX_REVISION_HISTORY`. Any kind's revisions
    (Workspace, InferenceSet, RAGEngine) are planned by this one rule.

    KAITO fails with "revision name conflicts" when `<name>-<hash[:5]>` exists with a different hash,
    which wedges the object forever; we lengthen the name instead (ten, then all 64 characters).
    """
    ordered = sorted(existing, key=lambda r: int(r.get("revision") or 0))
    for rev in ordered:
        if ((rev.get("metadata") or {}).get("annotations") or {}).get(hash_annotation) == spec_hash:
            return RevisionPlan(spec_hash=spec_hash, name=rev["metadata"]["name"],
                                number=int(rev.get("revision") or 0), create=None, delete=())
    name = free_revision_name(owner_name, spec_hash, {r["metadata"]["name"] for r in ordered})
    number = (int(ordered[-1].get("revision") or 0) + 1) if ordered else 1
    overflow = max(0, len(ordered) + 1 - MAX_REVISION_HISTORY)
    return RevisionPlan(spec_hash=spec_hash, name=name, number=number, create=build(name, number),
                        delete=tuple(r["metadata"]["name"] for r in ordered[:overflow]))


def plan_revision(ws: Workspace, existing: Iterable[Mapping[str, Any]]) -> RevisionPlan:
    """A Workspace's revisions (`plan_next_revision`)."""
    spec_hash = compute_revision_hash(ws)
    return plan_next_revision(ws.name, spec_hash, existing, hash_annotation=labels.ANNOTATION_HASH,
                              build=lambda name, number: build_controller_revision(ws, spec_hash, number, name=name))


def free_revision_name(ws_name: str, spec_hash: str, taken: set[str]) -> str:
    """`<name>-<hash[:5]>`, lengthened (ten characters, then all) while the name is taken."""
    for length in (5, 10):
        candidate = revision_name(ws_name, spec_hash, length)
        if candidate not in taken:
            return candidate
    return revision_name(ws_name, spec_hash, len(spec_hash))
