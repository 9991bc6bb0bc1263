"""The one way in and out of the served versions: wire dict ↔ hub Workspace, and version ↔ version.

`parse_workspace` reads a Workspace of any served version into the hub; `to_wire` writes a hub in the
version asked for; `convert_object` is what the conversion webhook does for the API server. Every
other room calls these and never imports `kaito.api.v1alpha1` or `kaito.api.v1beta1` itself, so a new
served version is a new module plus one line in `SERVED` (ARCHITECTURE.md rule 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pydantic

from kaito.api import hub, v1alpha1, v1beta1
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
