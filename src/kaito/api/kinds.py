"""Every kind kaito serves, and the way in and out of each served version, by kind.

Workspaces go through `kaito.api.conversion`; InferenceSets and RAGEngines through the tables
here. This is the one place that knows which wire module serves which (kind, version), so
admission, the conversion webhook and `kaito validate` dispatch on `kind` through it and no other
room imports a wire module (ARCHITECTURE.md rule 8). Pure; errors are `conversion.ParseError`
with one field error per problem.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from kaito.api import conversion, hub, inferenceset, ragengine
from kaito.api.errors import FieldError, validation_errors
from kaito.api.v1alpha1 import inferenceset as alpha_is
from kaito.api.v1alpha1 import ragengine as alpha_rag
from kaito.api.v1beta1 import inferenceset as beta_is
from kaito.api.v1beta1 import ragengine as beta_rag

ALPHA, BETA = conversion.LEGACY_VERSION, conversion.STORAGE_VERSION
ParseError = conversion.ParseError


@dataclass(frozen=True)
class Wire:
    """One served version of a kind: its model and the two conversions."""

    model: type[pydantic.BaseModel]
    to_hub: Callable[[Any], Any]
    from_hub: Callable[[Any], Any]


@dataclass(frozen=True)
class ServedKind:
    kind: str
    plural: str
    versions: Mapping[str, Wire]
    storage_version: str = BETA


INFERENCESET = ServedKind(inferenceset.KIND, inferenceset.PLURAL, {
    ALPHA: Wire(alpha_is.InferenceSet, alpha_is.to_hub, alpha_is.from_hub),
    BETA: Wire(beta_is.InferenceSet, beta_is.to_hub, beta_is.from_hub),
})
RAGENGINE = ServedKind(ragengine.KIND, ragengine.PLURAL, {
    ALPHA: Wire(alpha_rag.RAGEngine, alpha_rag.to_hub, alpha_rag.from_hub),
    BETA: Wire(beta_rag.RAGEngine, beta_rag.to_hub, beta_rag.from_hub),
})
KINDS: dict[str, ServedKind] = {k.kind: k for k in (INFERENCESET, RAGENGINE)}
# Everything admission judges and the conversion webhook converts.
ADMITTED_KINDS = (hub.KIND, *KINDS)


def _served(kind: ServedKind, api_version: object) -> Wire:
    wire = kind.versions.get(api_version) if isinstance(api_version, str) else None
    if wire is None:
        raise ParseError([FieldError("apiVersion", f"unsupported version {api_version!r} for {kind.kind}: "
                                                   f"served are {', '.join(kind.versions)}")])
    return wire


def kind_of(obj: Any) -> str | None:
    return obj.get("kind") if isinstance(obj, Mapping) and isinstance(obj.get("kind"), str) else None


def parse_object(obj: Any) -> tuple[Any, str]:
    """Any admitted kind of any served version → (its hub object, the apiVersion it was written in).

    A Workspace comes back as `hub.Workspace`, an InferenceSet as `inferenceset.InferenceSet`, a
    RAGEngine as `ragengine.RAGEngine`, each defaulted as its versions default it.
    """
    if not isinstance(obj, Mapping):
        raise ParseError([FieldError("", "an object must be a mapping (a YAML or JSON object)")])
    kind = kind_of(obj)
    if kind == hub.KIND:
        return conversion.parse_workspace(obj)
    served = KINDS.get(kind or "")
    if served is None:
        raise ParseError([FieldError("kind", f"expected kind {' or '.join(ADMITTED_KINDS)}, got {obj.get('kind')!r}")])
    wire = _served(served, obj.get("apiVersion"))
    try:
        return wire.to_hub(wire.model.model_validate(dict(obj))), str(obj["apiVersion"])
    except pydantic.ValidationError as exc:
        raise ParseError(validation_errors(exc)) from None


def to_wire(obj: Any, api_version: str) -> dict[str, Any]:
    """A hub object of any admitted kind as a JSON-shaped dict of `api_version`."""
    if isinstance(obj, hub.Workspace):
        return conversion.to_wire(obj, api_version)
    kind = inferenceset.KIND if isinstance(obj, inferenceset.InferenceSet) else ragengine.KIND
    try:
        return _served(KINDS[kind], api_version).from_hub(obj).to_dict()
    except pydantic.ValidationError as exc:
        raise ParseError(validation_errors(exc)) from None


def convert_object(obj: Any, desired_api_version: str) -> dict[str, Any]:
    """One object of a ConversionReview, any admitted kind: → `desired_api_version`, losslessly.

    As for Workspaces: an object already in the desired version comes back as it came, and the
    metadata other than annotations goes back byte for byte (the API server refuses any change).
    """
    if kind_of(obj) == hub.KIND:
        return conversion.convert_object(obj, desired_api_version)
    served = KINDS.get(kind_of(obj) or "")
    if served is None:
        parse_object(obj)  # raises the ParseError naming what is wrong
        raise AssertionError("unreachable")
    _served(served, desired_api_version)
    if obj.get("apiVersion") == desired_api_version:
        return dict(obj)
    hub_obj, _ = parse_object(obj)
    out = to_wire(hub_obj, desired_api_version)
    meta = dict(obj.get("metadata") or {})
    annotations = (out.get("metadata") or {}).get("annotations")
    if annotations:
        meta["annotations"] = annotations
    elif meta.get("annotations"):
        del meta["annotations"]
    out["metadata"] = meta
    return out
