"""The InferenceSet kind as the manager drives it: its reconciler and which events wake which set.

Watches: InferenceSets enqueue themselves (not for a status-only change); Workspaces enqueue the set
named by their `inferenceset.kaito.sh/created-by` label on every change, status included, since a
child turning ready (or going away) is what the set's status and its scaling wait for; owned
ControllerRevisions, and with the gateway option the InferencePool and its picker's objects,
enqueue the set of their controller owner reference.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from kaito.api import inferenceset
from kaito.cluster import protocol
from kaito.cluster.protocol import Cluster, WatchEvent
from kaito.controller.inferenceset.observe import GATEWAY_KINDS, InferenceSetKey
from kaito.controller.inferenceset.reconciler import InferenceSetReconciler
from kaito.controller.settings import Settings
from kaito.controller.watching import KindReconciler, SeenObjects, Watch, controller_owner, object_key


class InferenceSetController:
    """The InferenceSet reconciler plus the event mapping above (see `watching.KindController`)."""

    name = "inferenceset"
    kind = protocol.INFERENCESET
    key_type = InferenceSetKey

    def __init__(self, cluster: Cluster, settings: Settings, *, reconciler: KindReconciler | None = None) -> None:
        self.reconciler: KindReconciler = reconciler or InferenceSetReconciler(cluster, settings)
        self.gateway_on = settings.inferenceset_gateway
        self._seen = SeenObjects()

    def watches(self, *, provisions_nodes: bool) -> list[Watch]:
        out = [Watch(kind=protocol.INFERENCESET, keys_for=self.on_set),
               Watch(kind=protocol.WORKSPACE, keys_for=self.on_child),
               Watch(kind=protocol.CONTROLLER_REVISION, keys_for=self.on_owned)]
        if self.gateway_on:
            out += [Watch(kind=kind, keys_for=self.on_owned) for kind in GATEWAY_KINDS]
        return out

    def known_keys(self) -> Iterable[Hashable]:
        return self._seen.keys()

    def on_set(self, event: WatchEvent) -> list[InferenceSetKey]:
        key = InferenceSetKey(*object_key(event.object))
        return [key] if self._seen.should_reconcile(key, event) else []

    def on_child(self, event: WatchEvent) -> list[InferenceSetKey]:
        meta = event.object.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(inferenceset.LABEL_CREATED_BY)
        if not owner:
            return []
        return [InferenceSetKey(meta.get("namespace") or protocol.DEFAULT_NAMESPACE, owner)]

    def on_owned(self, event: WatchEvent) -> list[InferenceSetKey]:
        owner = controller_owner(event.object, inferenceset.KIND)
        return [InferenceSetKey(*owner)] if owner is not None else []
