"""The RAGEngine kind as the manager drives it: its reconciler and which events wake which engine.

Watches: RAGEngines enqueue themselves (not for a status-only change); their Services, Deployments
and ControllerRevisions enqueue the engine named by the controller owner reference; NodeClaims and
Nodes by the engine labels the NodeClaim carries (and Nodes by the `compute.labelSelector` they
match); Workspaces enqueue every engine whose `inferenceService.url` names them — every change
counts here, status included, since a Workspace turning Ready is what such an engine waits for.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from kaito.api import ragengine
from kaito.cluster import protocol
from kaito.cluster.protocol import Cluster, WatchEvent
from kaito.controller.ragengine.observe import RAGEngineKey, compute_labels, inference_url
from kaito.controller.ragengine.reconciler import RAGEngineReconciler
from kaito.controller.ragengine.target import ServiceEndpoints, find_workspace_target
from kaito.controller.settings import Settings
from kaito.controller.watching import KindReconciler, SeenObjects, Watch, controller_owner, object_key

OWNED_WATCHES = (protocol.SERVICE, protocol.DEPLOYMENT, protocol.CONTROLLER_REVISION)


def labelled_key(obj: Mapping[str, Any]) -> RAGEngineKey | None:
    """The engine a NodeClaim (or its Node) was made for, from the engine labels it carries."""
    obj_labels = (obj.get("metadata") or {}).get("labels") or {}
    name, namespace = obj_labels.get(ragengine.LABEL_RAGENGINE), obj_labels.get(ragengine.LABEL_RAGENGINE_NAMESPACE)
    return RAGEngineKey(namespace, name) if name and namespace else None


class RAGEngineController:
    """The RAGEngine reconciler plus the event mapping above (see `watching.KindController`)."""

    name = "ragengine"
    kind = protocol.RAGENGINE
    key_type = RAGEngineKey

    def __init__(self, cluster: Cluster, settings: Settings, *, endpoints: ServiceEndpoints | None = None,
                 reconciler: KindReconciler | None = None) -> None:
        self.reconciler: KindReconciler = reconciler or RAGEngineReconciler(cluster, settings, endpoints=endpoints)
        self._seen = SeenObjects()
        self._targets: dict[RAGEngineKey, tuple[str, str]] = {}  # engine -> (namespace, Workspace) it names
        self._named_by: dict[tuple[str, str], set[RAGEngineKey]] = {}  # the same, the other way round
        self._node_labels: dict[RAGEngineKey, dict[str, str]] = {}  # engines with compute -> matchLabels

    def watches(self, *, provisions_nodes: bool) -> list[Watch]:
        out = [Watch(kind=protocol.RAGENGINE, keys_for=self.on_ragengine),
               Watch(kind=protocol.WORKSPACE, keys_for=self.on_workspace),
               Watch(kind=protocol.NODE, keys_for=self.on_node)]
        out += [Watch(kind=kind, keys_for=self.on_owned) for kind in OWNED_WATCHES]
        if provisions_nodes:
            out.append(Watch(kind=protocol.NODECLAIM, keys_for=self.on_node))
        return out

    def known_keys(self) -> Iterable[Hashable]:
        return self._seen.keys()

    def on_ragengine(self, event: WatchEvent) -> list[RAGEngineKey]:
        key = RAGEngineKey(*object_key(event.object))
        old = self._targets.pop(key, None)
        if old is not None:
            self._named_by[old].discard(key)
            if not self._named_by[old]:
                del self._named_by[old]
        self._node_labels.pop(key, None)
        if event.type != "DELETED":
            named = find_workspace_target(inference_url(event.object), key.namespace)
            if named is not None:
                self._targets[key] = (key.namespace, named.name)
                self._named_by.setdefault(self._targets[key], set()).add(key)
            node_labels = compute_labels(event.object)
            if node_labels is not None:
                self._node_labels[key] = node_labels
        return [key] if self._seen.should_reconcile(key, event) else []

    def on_workspace(self, event: WatchEvent) -> list[RAGEngineKey]:
        return sorted(self._named_by.get(object_key(event.object), ()))

    def on_owned(self, event: WatchEvent) -> list[RAGEngineKey]:
        owner = controller_owner(event.object, ragengine.KIND)
        return [RAGEngineKey(*owner)] if owner is not None else []

    def on_node(self, event: WatchEvent) -> list[RAGEngineKey]:
        out = {key: None for key in [labelled_key(event.object)] if key is not None}
        node_labels = (event.object.get("metadata") or {}).get("labels") or {}
        if event.object.get("kind") != protocol.NODECLAIM.kind:
            for key, wanted in self._node_labels.items():
                if all(node_labels.get(k) == v for k, v in wanted.items()):
                    out[key] = None
        return list(out)
