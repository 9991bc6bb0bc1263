"""The Workspace kind as the manager drives it: its reconciler and which events wake which Workspace.

Watches: Workspaces (all namespaces) enqueue themselves, unless only their status changed; owned
Deployments, StatefulSets, Jobs, Services, ControllerRevisions and the cluster-scoped NodeClaims
enqueue their Workspace, found by the controller owner reference or the `kaito.sh/workspace` +
`kaito.sh/workspacenamespace` labels; Nodes enqueue the Workspaces whose `matchLabels` they carry
(a BYO node being labelled, a provisioned node turning Ready), looked up through an index of the
selectors so a Node event looks only at Workspaces that could match it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from kaito.api import labels
from kaito.cluster import protocol
from kaito.cluster.protocol import Cluster, ResourceKind, WatchEvent
from kaito.controller.observe import WorkspaceKey, node_list_labels
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings
from kaito.controller.watching import KindReconciler, SeenObjects, Watch, controller_owner, object_key

OWNED_WATCHES: tuple[ResourceKind, ...] = (
    protocol.DEPLOYMENT,
    protocol.STATEFULSET,
    protocol.JOB,
    protocol.SERVICE,
    protocol.CONTROLLER_REVISION,
    # Pods (by the workspace labels): a model server that stops leaves why in its termination message.
    protocol.POD,
)

# Called with every Workspace watch event (listed items arrive as ADDED), before it is mapped to keys.
WorkspaceEventObserver = Callable[[WatchEvent], None]

# Index bucket for selectors with a value that cannot be a dict key (malformed input): always scanned.
_UNINDEXED = ("", "")


def owner_key(obj: Mapping[str, Any]) -> WorkspaceKey | None:
    """The Workspace an object belongs to: its controller owner reference, else the workspace labels."""
    owner = controller_owner(obj, protocol.WORKSPACE.kind)
    if owner is not None:
        return WorkspaceKey(*owner)
    obj_labels = (obj.get("metadata") or {}).get("labels") or {}
    name = obj_labels.get(labels.LABEL_WORKSPACE_NAME)
    namespace = obj_labels.get(labels.LABEL_WORKSPACE_NAMESPACE)
    if name and namespace:
        return WorkspaceKey(namespace, name)
    return None


def _hashable(pair: tuple) -> bool:
    try:
        hash(pair)
    except TypeError:
        return False
    return True


def _index_pair(selector: Mapping[str, Any]) -> tuple:
    """The label pair a non-empty selector is indexed under: its smallest, or `_UNINDEXED`."""
    pair = min(selector.items(), key=lambda item: item[0])
    return pair if _hashable(pair) and pair != _UNINDEXED else _UNINDEXED


class WorkspaceController:
    """The Workspace reconciler plus the event mapping above (see `watching.KindController`)."""

    name = "workspace"
    kind = protocol.WORKSPACE
    key_type = WorkspaceKey

    def __init__(self, cluster: Cluster, settings: Settings, *, reconciler: KindReconciler | None = None) -> None:
        self.reconciler: KindReconciler = reconciler or Reconciler(cluster, settings)
        self._seen = SeenObjects()
        # matchLabels of every known Workspace: which Workspaces a Node event concerns ...
        self._selectors: dict[WorkspaceKey, dict[str, str]] = {}
        # ... indexed by one of their label pairs, so a Node event is not O(Workspaces).
        self._selector_index: dict[tuple[str, str], dict[WorkspaceKey, None]] = {}

    def watches(self, *, provisions_nodes: bool) -> list[Watch]:
        out = [Watch(kind=protocol.WORKSPACE, keys_for=self.on_workspace),
               Watch(kind=protocol.NODE, keys_for=self.on_node)]
        out += [Watch(kind=kind, keys_for=self.on_owned) for kind in OWNED_WATCHES]
        if provisions_nodes:
            out.append(Watch(kind=protocol.NODECLAIM, keys_for=self.on_owned))
        return out

    def known_keys(self) -> Iterable[Hashable]:
        return list(self._selectors)

    # -- event mapping -------------------------------------------------------------------------

    def on_workspace(self, event: WatchEvent) -> list[WorkspaceKey]:
        key = WorkspaceKey(*object_key(event.object))
        if event.type == "DELETED":
            self._set_selector(key, None)  # gone: nothing left to reconcile (its finalizer ran before)
        else:
            self._set_selector(key, node_list_labels(event.object))
        return [key] if self._seen.should_reconcile(key, event) else []

    def _set_selector(self, key: WorkspaceKey, selector: dict[str, str] | None) -> None:
        """Record (None: forget) a Workspace's matchLabels, keeping `_selector_index` in step."""
        old = self._selectors.pop(key, None) if selector is None else self._selectors.get(key)
        if old:
            pair = _index_pair(old)
            bucket = self._selector_index.get(pair)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._selector_index[pair]
        if selector is None:
            return
        self._selectors[key] = selector
        if selector:
            self._selector_index.setdefault(_index_pair(selector), {})[key] = None

    def on_owned(self, event: WatchEvent) -> list[WorkspaceKey]:
        key = owner_key(event.object)
        return [] if key is None else [key]

    def on_node(self, event: WatchEvent) -> list[WorkspaceKey]:
        node_labels = (event.object.get("metadata") or {}).get("labels") or {}
        out: dict[WorkspaceKey, None] = {}
        key = owner_key(event.object)  # a NodeClaim's node carries the workspace labels
        if key is not None:
            out[key] = None
        pairs = [pair for pair in node_labels.items() if _hashable(pair)] + [_UNINDEXED]
        for pair in pairs:
            for ws_key in self._selector_index.get(pair, ()):
                selector = self._selectors[ws_key]
                if all(node_labels.get(k) == v for k, v in selector.items()):
                    out[ws_key] = None
        return list(out)
