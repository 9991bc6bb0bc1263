"""One stored object, several served versions: what an API server does for the Workspace.

The Workspace is served as `kaito.sh/v1alpha1` and `kaito.sh/v1beta1` and stored as v1beta1. On a
real cluster the API server does this with the CRD's conversion webhook and our mutating webhook;
a backend that is its own API server (the local store, the tests' API emulator) calls these
instead: `to_storage` on every write (the object converted to the storage version, losslessly,
through `kaito.api.conversion`), `stamp` inside the write's transaction (annotation
`workspace.kaito.sh/api-version`: the version the spec was written in), `to_served` on every read
(the stored object in the version asked for). Every other kind passes through untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kaito.api import conversion
from kaito.cluster import errors
from kaito.cluster.protocol import WORKSPACE, WORKSPACE_V1ALPHA1, Object, ResourceKind, storage_kind

log = logging.getLogger(__name__)
LEGACY_STORAGE_KEY = WORKSPACE_V1ALPHA1.key  # where a store from before v1beta1 kept its Workspaces


def is_versioned(kind: ResourceKind) -> bool:
    """Whether objects of `kind` are stored in another version than some they are served in."""
    return storage_kind(kind) is WORKSPACE


def to_storage(obj: Mapping[str, Any], kind: ResourceKind) -> tuple[Object, str | None]:
    """(the object in the storage version, the served version it was written in); `kind` is the
    object's own. An object that is not a Workspace of a served version is `Invalid`, naming the field,
    as the API server's schema check would refuse it."""
    if not is_versioned(kind):
        return dict(obj), None
    try:
        conversion.parse_workspace(obj)  # the schema check, in the version it was written in
        return conversion.convert_object(obj, conversion.STORAGE_VERSION), kind.api_version
    except conversion.ParseError as exc:
        raise errors.Invalid(f"{kind.kind} {(obj.get('metadata') or {}).get('name')!r}: {exc}") from None


def stamp(written: str | None):
    """The store's admission hook for a write made in `written`: `new` (the merged object, storage
    version) gets the version its spec was written in, given the stored `current` (None: a create)."""

    def admit(new: Object, current: Object | None) -> Object:
        version = conversion.compute_written_version(new, current, written)
        return conversion.with_written_version(new, version)

    return admit


def to_served(obj: Object, kind: ResourceKind) -> Object:
    """The stored object as `kind`'s version asks for it (unchanged for other kinds)."""
    if not is_versioned(kind) or obj.get("apiVersion") == kind.api_version:
        return obj
    try:
        return conversion.convert_object(obj, kind.api_version)
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
