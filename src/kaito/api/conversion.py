"""The one way in and out of the served versions: wire dict ↔ hub Workspace, and version ↔ version.

`parse_workspace` reads a Workspace of any served version into the hub; `to_wire` writes a hub in the
version asked for; `convert_object` is what the conversion webhook does for the API server (and the
local store, which stores one version and answers in any). `compute_written_version` says which
version a write was made in, for annotation `workspace.kaito.sh/api-version` (stamped by the
mutating webhook and by the local store; `recorded_version` reads it back). Every
other room calls these and never imports `kaito.api.v1alpha1` or `kaito.api.v1beta1` itself, so a new
served version is a new module plus one line in `SERVED` (ARCHITECTURE.md rule 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pydantic

from kaito.api import hub, labels, v1alpha1, v1beta1
from kaito.api.errors import FieldError, validation_errors

SERVED: dict[str, ModuleType] = {v1alpha1.API_VERSION: v1alpha1, v1beta1.API_VERSION: v1beta1}
SERVED_VERSIONS = tuple(SERVED)  # "kaito.sh/v1alpha1", "kaito.sh/v1beta1"
STORAGE_VERSION = v1beta1.API_VERSION
LEGACY_VERSION = v1alpha1.API_VERSION
GROUP = hub.GROUP
KIND = hub.KIND


class ParseError(ValueError):
    """An object that is not a Workspace of a served version; `errors` name the fields at fault."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


def version_name(api_version: str) -> str:
    """`kaito.sh/v1beta1` → `v1beta1`."""
    return api_version.rsplit("/", 1)[-1]


def served_module(api_version: object) -> ModuleType:
    """The wire module of a served version; ParseError naming `apiVersion` for any other."""
    module = SERVED.get(api_version) if isinstance(api_version, str) else None
    if module is None:
        raise ParseError([FieldError(
            "apiVersion", f"unsupported version {api_version!r}: served are {', '.join(SERVED_VERSIONS)}")])
    return module


def parse_workspace(obj: Mapping[str, Any]) -> tuple[hub.Workspace, str]:
    """A Workspace dict of any served version → (hub Workspace, the apiVersion it was written in).

    The version's own defaults are applied (v1alpha1's instanceType, say) and fields that version
    carries for newer ones come back from their annotation. Raises ParseError with one field error
    per problem; never anything else.
    """
    if not isinstance(obj, Mapping):
        raise ParseError([FieldError("", "a Workspace must be a mapping (a YAML or JSON object)")])
    if obj.get("kind") != KIND:
        raise ParseError([FieldError("kind", f"expected kind {KIND}, got {obj.get('kind')!r}")])
    module = served_module(obj.get("apiVersion"))
    try:
        wire = module.Workspace.model_validate(dict(obj))
        return module.to_hub(wire), wire.api_version
    except pydantic.ValidationError as exc:
        raise ParseError(validation_errors(exc)) from None


def to_wire(ws: hub.Workspace, api_version: str) -> dict[str, Any]:
    """The hub as a JSON-shaped dict of `api_version` (what `kubectl get -o yaml` shows).

    Raises ParseError when the hub holds a value the version's schema refuses (only a hub built in
    code can: one read from a served version always fits).
    """
    try:
        return served_module(api_version).from_hub(ws).to_dict()
    except pydantic.ValidationError as exc:
        raise ParseError(validation_errors(exc)) from None


def convert_object(obj: Mapping[str, Any], desired_api_version: str) -> dict[str, Any]:
    """One object of a ConversionReview: any served version → `desired_api_version`, losslessly.

    An object already in the desired version is returned as it came (the API server asks for that
    too); anything that cannot be converted raises ParseError.
    """
    served_module(desired_api_version)
    if isinstance(obj, Mapping) and obj.get("apiVersion") == desired_api_version:
        return dict(obj)
    ws, _ = parse_workspace(obj)
    out = to_wire(ws, desired_api_version)
    # The API server refuses a conversion that touches metadata other than labels and annotations,
    # so the original metadata goes back byte for byte, with only the annotations replaced.
    meta = dict(obj.get("metadata") or {})
    annotations = (out.get("metadata") or {}).get("annotations")
    if annotations:
        meta["annotations"] = annotations
    elif meta.get("annotations"):  # it held only the carried fields, now back in place
        del meta["annotations"]
    out["metadata"] = meta
    return out


_SPEC_SECTIONS = ("resource", "inference", "tuning")


def _spec_of(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The hub's spec sections of a Workspace of any served version; None when it does not parse."""
    try:
        ws, _ = parse_workspace(obj or {})
    except ParseError:
        return None
    return ws.model_dump(mode="json", by_alias=True, exclude_none=True, include=set(_SPEC_SECTIONS))


def recorded_version(obj: Mapping[str, Any] | None) -> str:
    """The served version a stored Workspace was written in (its `workspace.kaito.sh/api-version`);
    the storage version when it carries no (or no valid) record."""
    meta = (obj or {}).get("metadata") if isinstance(obj, Mapping) else None
    annotations = (meta or {}).get("annotations") if isinstance(meta, Mapping) else None
    value = (annotations or {}).get(labels.ANNOTATION_API_VERSION) if isinstance(annotations, Mapping) else None
    return value if value in SERVED else STORAGE_VERSION


def compute_written_version(obj: Mapping[str, Any], old: Mapping[str, Any] | None,
                            api_version: str | None = None) -> str | None:
    """What `workspace.kaito.sh/api-version` should say once `obj` (written in `api_version`, default its
    own `apiVersion`) replaces the stored `old` (None: a create). Both may be in any served version.

    A create, or an update that changes the spec (`resource`, `inference`, `tuning`), records the
    version it was written in. An update that leaves the spec alone (the controller's finalizer and
    revision annotations, a label) keeps the record `old` has, or None when it has none: the version
    describes how the spec was written, and kaito's own bookkeeping writes never change that.
    """
    written = api_version if api_version is not None else obj.get("apiVersion")
    written = written if written in SERVED else None
    if old is None:
        return written
    spec = _spec_of(obj)
    if spec is None or spec != _spec_of(old):
        return written
    meta = old.get("metadata") if isinstance(old.get("metadata"), Mapping) else {}
    value = (meta.get("annotations") or {}).get(labels.ANNOTATION_API_VERSION)
    return value if value in SERVED else None


def with_written_version(obj: Mapping[str, Any], version: str | None) -> dict[str, Any]:
    """A copy of `obj` whose `workspace.kaito.sh/api-version` says `version` (None: left as it is)."""
    out = dict(obj)
    if version is None:
        return out
    meta = dict(out.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), labels.ANNOTATION_API_VERSION: version}
    out["metadata"] = meta
    return out
