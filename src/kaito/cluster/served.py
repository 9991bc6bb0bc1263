"""One stored object, several served versions: what an API server does for our kinds.

The Workspace, the RAGEngine and the InferenceSet are served as `kaito.sh/v1alpha1` and
`kaito.sh/v1beta1` and stored as v1beta1. On a real cluster the API server does this with the CRDs'
conversion webhook and our mutating webhook; a backend that is its own API server (the local store,
the tests' API emulator) calls these instead: `to_storage` on every write (the object converted to
the storage version, losslessly, through `kaito.api.conversion` or `kaito.api.kinds`), `stamp`
inside the write's transaction (on Workspaces, annotation `workspace.kaito.sh/api-version`: the
version the spec was written in), `to_served` on every read (the stored object in the version asked
for). Every other kind passes through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kaito.api import conversion, kinds
from kaito.cluster import errors
from kaito.cluster.protocol import (
    STORAGE_KINDS,
    WORKSPACE,
    WORKSPACE_V1ALPHA1,
    Object,
    ResourceKind,
    storage_kind,
)

log = logging.getLogger(__name__)
LEGACY_STORAGE_KEY = WORKSPACE_V1ALPHA1.key  # where a store from before v1beta1 kept its Workspaces


def is_versioned(kind: ResourceKind) -> bool:
    """Whether objects of `kind` are stored in another version than some they are served in."""
    return (kind.group, kind.kind) in STORAGE_KINDS


def to_storage(obj: Mapping[str, Any], kind: ResourceKind) -> tuple[Object, str | None]:
    """(the object in the storage version, the served version it was written in); `kind` is the
    object's own. An object that is not a Workspace (RAGEngine, InferenceSet) of a served version is `Invalid`,
    naming the field, as the API server's schema check would refuse it."""
    if not is_versioned(kind):
        return dict(obj), None
    if kind.kind != WORKSPACE.kind and kind.api_version == storage_kind(kind).api_version:
        # Nothing to convert, and an apply may name only some fields (a controller's finalizer on
        # an InferenceSet, whose spec is required): as an API server does, the schema is checked on
        # the merged object (`stamp`), not on the applied part.
        return dict(obj), kind.api_version
    try:
        kinds.parse_object(obj)  # the schema check, in the version it was written in
        return kinds.convert_object(obj, storage_kind(kind).api_version), kind.api_version
    except conversion.ParseError as exc:
        raise errors.Invalid(f"{kind.kind} {(obj.get('metadata') or {}).get('name')!r}: {exc}") from None


def stamp(written: str | None):
    """The store's admission hook for a write made in `written`: `new` (the merged object, storage
    version) gets the version its spec was written in, given the stored `current` (None: a create)."""

    def admit(new: Object, current: Object | None) -> Object:
        if new.get("kind") != WORKSPACE.kind:
            check_merged(new, current)
            return new  # only a Workspace records the version its spec was written in
        version = conversion.compute_written_version(new, current, written)
        return conversion.with_written_version(new, version)

    return admit


def check_merged(new: Object, current: Object | None) -> None:
    """The schema check of a merged object (storage version): `Invalid` when it does not parse. What
    the write left as it was is not judged again (Kubernetes' validation ratcheting), so a finalizer
    can always be removed from an object stored under older rules."""
    if current is not None and _spec_part(new) == _spec_part(current):
        return
    try:
        kinds.parse_object(new)
    except conversion.ParseError as exc:
        raise errors.Invalid(f"{new.get('kind')} {(new.get('metadata') or {}).get('name')!r}: {exc}") from None


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def to_served(obj: Object, kind: ResourceKind) -> Object:
    """The stored object as `kind`'s version asks for it (unchanged for other kinds)."""
    if not is_versioned(kind) or obj.get("apiVersion") == kind.api_version:
        return obj
    try:
        return kinds.convert_object(obj, kind.api_version)
    except conversion.ParseError as exc:
        # Stored before today's rules: answer as KAITO's API server would, with only the version changed.
        log.warning("cannot convert stored %s %s to %s: %s", obj.get("kind"),
                    (obj.get("metadata") or {}).get("name"), kind.api_version, exc)
        return {**obj, "apiVersion": kind.api_version}


def migrate_legacy(body: Object) -> Object:
    """A Workspace a store from before v1beta1 kept as v1alpha1, in the storage version, recorded as
    written in v1alpha1 (the only version there was). One that no longer parses keeps its fields and
    gets the storage version's apiVersion, as KAITO's API server would serve it."""
    try:
        converted = conversion.convert_object(body, conversion.STORAGE_VERSION)
    except conversion.ParseError:
        converted = {**body, "apiVersion": conversion.STORAGE_VERSION}
    return conversion.with_written_version(converted, conversion.LEGACY_VERSION)
