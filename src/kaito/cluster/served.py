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
from collections.abc import Callable, Mapping
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
# The admission an API server runs before it stores a write: (new, stored or None) of one version →
# the verdict of `kaito.api.admission.admit` (its `errors`, empty when allowed).
Admission = Callable[[Mapping[str, Any], Mapping[str, Any] | None], Any]
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


def stamp(written: str | None, admission: Admission | None = None):
    """The store's admission hook for a write made in `written`: `new` (the merged object, storage
    version) gets the version its spec was written in, given the stored `current` (None: a create).

    With `admission`, the write is judged first, as the validating webhook judges it on a cluster:
    the merged object against the stored one (UPDATE rules) or alone (CREATE), both in the version
    the spec is written in, so that version's rules apply; a refusal is `Invalid`, naming each field,
    and nothing is written. A Workspace being deleted is never refused (its finalizer must go)."""

    def admit(new: Object, current: Object | None) -> Object:
        if new.get("kind") != WORKSPACE.kind:
            if current is not None and _spec_part(new) == _spec_part(current):
                return new  # ratcheting: metadata or status alone (a finalizer going) is never refused
            check_merged(new, current)
            if admission is not None:
                judge(admission, new, current, None)
            return new  # only a Workspace records the version its spec was written in
        version = conversion.compute_written_version(new, current, written)
        stamped = conversion.with_written_version(new, version)
        if admission is not None:
            judge(admission, stamped, current, version or conversion.recorded_version(current))
        return stamped

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


def judged(admission: Admission):
    """The store's admission hook for a kind served in one version only (InferenceSet, RAGEngine):
    the write is judged as `stamp` judges a Workspace, and stored as it is."""

    def admit(new: Object, current: Object | None) -> Object:
        judge(admission, new, current, None)
        return new

    return admit


def is_admitted(kind: ResourceKind) -> bool:
    """Whether kaito's admission judges writes of `kind` (its own kinds, in the kaito.sh group)."""
    return kind.group == conversion.GROUP and kind.kind in kinds.ADMITTED_KINDS


def judge(admission: Admission, new: Object, current: Object | None, version: str | None) -> None:
    """`Invalid` when `admission` refuses `new` replacing `current`; a Workspace is seen in `version`
    (None: as it is)."""
    what = f"{new.get('kind')} {_where(new)}"
    try:
        shown_new = conversion.convert_object(new, version) if version else new
        shown_old = conversion.convert_object(current, version) if version and current is not None else current
    except conversion.ParseError as exc:
        raise errors.Invalid(f"{what}: {exc}") from None
    refused = list(admission(shown_new, shown_old).errors)
    if refused:
        raise errors.Invalid(f"{what} refused by admission: " + "; ".join(str(e) for e in refused))


def _where(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


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
