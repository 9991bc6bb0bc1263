"""What one kind's controller tells the manager: its reconciler, its queue keys and its watches.

The manager runs one shared work queue for every kind (ARCHITECTURE: one reconciler per kind, one
shared queue). Each kind plugs in as a `KindController`: the kind it reconciles, the class of its
queue keys (the manager hands a key to the reconciler of its class, so a Workspace and a RAGEngine
of the same name are two keys), the reconciler, and the watches that feed the queue — each watch a
resource kind plus a function from a watch event to the keys it concerns (its own objects, the
objects it owns, or others it depends on: Nodes for Workspaces, Workspaces for RAGEngines). Two
kinds watching the same resource kind share one watch stream; the manager fans its events out.

`compute_fingerprint` and `controller_owner` are the helpers most kinds' mappings need.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kaito.cluster import protocol
from kaito.cluster.protocol import ResourceKind, WatchEvent

# Keys to enqueue for one event (an empty iterable: the event concerns no object of this kind).
EventMapper = Callable[[WatchEvent], Iterable[Hashable]]


@dataclass(frozen=True, kw_only=True)
class Watch:
    kind: ResourceKind
    keys_for: EventMapper


class KindReconciler(Protocol):
    """One reconcile of one key: seconds until the next look, or None (only on the next event)."""

    async def reconcile(self, key: Any) -> float | None: ...


class KindController(Protocol):
    """A kind as the manager drives it (see the module docstring)."""

    @property
    def name(self) -> str:
        """Lower-case kind name: the `controller` label of the operator's metrics, and log tags."""

    @property
    def kind(self) -> ResourceKind:
        """The kind reconciled; a reconcile that fails with a bug leaves a Warning event on its object."""

    @property
    def key_type(self) -> type:
        """The class of this kind's queue keys (frozen dataclasses with `namespace` and `name`)."""

    @property
    def reconciler(self) -> KindReconciler: ...

    def watches(self, *, provisions_nodes: bool) -> list[Watch]:
        """Every watch this kind needs; the first is its own kind's."""

    def known_keys(self) -> Iterable[Hashable]:
        """Every key seen alive on the watches (a resync enqueues them all)."""


def compute_fingerprint(obj: Mapping[str, Any]) -> tuple:
    """What an event about a reconciled object must change to be worth a reconcile: spec
    (generation), deletion, finalizers, annotations (`kaito.sh/enablelb`). A status-only change -
    nearly always our own status write - is skipped, like controller-runtime's
    GenerationChangedPredicate."""
    meta = obj.get("metadata") or {}
    return (
        meta.get("generation"),
        meta.get("deletionTimestamp"),
        tuple(meta.get("finalizers") or ()),
        tuple(sorted((meta.get("annotations") or {}).items())),
    )


def controller_owner(obj: Mapping[str, Any], kind: str) -> tuple[str, str] | None:
    """(namespace, name) of the object's controller owner reference of `kind`, or None."""
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == kind and ref.get("name"):
            return meta.get("namespace") or protocol.DEFAULT_NAMESPACE, ref["name"]
    return None


def object_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an event's object."""
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or protocol.DEFAULT_NAMESPACE, meta.get("name") or ""


class SeenObjects:
    """The fingerprint of every live object of one kind: which events are worth a reconcile."""

    def __init__(self) -> None:
        self._seen: dict[Hashable, tuple] = {}

    def should_reconcile(self, key: Hashable, event: WatchEvent) -> bool:
        """Records the event; False for DELETED (nothing left to reconcile) and for a MODIFIED one
        that changed nothing but status."""
        if event.type == "DELETED":
            self._seen.pop(key, None)
            return False
        fingerprint = compute_fingerprint(event.object)
        if event.type == "MODIFIED" and self._seen.get(key) == fingerprint:
            return False
        self._seen[key] = fingerprint
        return True

    def keys(self) -> list[Hashable]:
        return list(self._seen)
