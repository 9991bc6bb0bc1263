"""Observe: everything one reconcile needs to know about a Workspace, read in one go.

The reads run concurrently and the result is frozen, so planning is a pure function of it and a
test can build an `Observed` by hand. Owned objects are found by the workspace labels and kept only
when their controller owner reference is this Workspace's uid: objects left by an earlier Workspace
of the same name (still being garbage-collected) are never mistaken for ours. The ConfigMaps the
Workspace names (`inference.config`, `tuning.config`) are read too: the plan re-checks them with
admission's rules, as the webhook did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kaito.api import labels
from kaito.cluster import errors, protocol
from kaito.cluster.protocol import Cluster, Object, ResourceKind

# Namespaced kinds a Workspace owns and that the controller compares with what it wants.
OWNED_KINDS: tuple[ResourceKind, ...] = (
    protocol.SERVICE,
    protocol.DEPLOYMENT,
    protocol.STATEFULSET,
    protocol.JOB,
    protocol.CONFIGMAP,
)


@dataclass(frozen=True, order=True)
class WorkspaceKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class Observed:
    key: WorkspaceKey
    workspace: Object | None  # None: gone
    nodes: tuple[Object, ...] = ()
    nodeclaims: tuple[Object, ...] = ()
    revisions: tuple[Object, ...] = ()
    owned: Mapping[tuple[str, str], Object] = field(default_factory=lambda: MappingProxyType({}))
    # (namespace, name) -> `data` of each ConfigMap the Workspace names; None: it does not exist.
    configmaps: Mapping[tuple[str, str], Mapping[str, str] | None] = field(
        default_factory=lambda: MappingProxyType({}))

    def owned_object(self, kind: ResourceKind, name: str) -> Object | None:
        return self.owned.get((kind.key, name))


def workspace_labels(key: WorkspaceKey) -> dict[str, str]:
    return {labels.LABEL_WORKSPACE_NAME: key.name, labels.LABEL_WORKSPACE_NAMESPACE: key.namespace}


def node_list_labels(workspace: Mapping[str, Any]) -> dict[str, str]:
    """`resource.labelSelector.matchLabels` of a stored Workspace, as written: the label filter of
    the Nodes it may use (and the key the manager maps Node events back by). Compare
    `manifests.ownership.placement_labels`, what its pods and NodeClaims require of a node."""
    selector = (workspace.get("resource") or {}).get("labelSelector") or {}
    return dict(selector.get("matchLabels") or {})


def named_configmaps(workspace: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(namespace, name) of the ConfigMaps a stored Workspace names in `inference.config` and
    `tuning.config` (the default tuning template is the controller's own copy, never read)."""
    namespace = (workspace.get("metadata") or {}).get("namespace") or protocol.DEFAULT_NAMESPACE
    names = [(workspace.get(section) or {}).get("config") for section in ("inference", "tuning")]
    return [(namespace, name) for name in names if isinstance(name, str) and name]


async def read_configmap(cluster: Cluster, namespace: str, name: str) -> Mapping[str, str] | None:
    """A ConfigMap's `data` ({} when it has none), None when it does not exist."""
    try:
        found = await cluster.get(protocol.CONFIGMAP, name, namespace)
    except errors.NotFound:
        return None
    data = found.get("data")
    return dict(data) if isinstance(data, Mapping) else {}


def is_owned_by(obj: Mapping[str, Any], uid: str | None) -> bool:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("uid") == uid:
            return True
    return False


async def observe_workspace(cluster: Cluster, key: WorkspaceKey, *, provisioning: bool = True) -> Observed:
    """Read the Workspace and its world; `Observed(workspace=None)` if the Workspace is gone."""
    try:
        workspace = await cluster.get(protocol.WORKSPACE, key.name, key.namespace)
    except errors.NotFound:
        return Observed(key=key, workspace=None)
    uid = (workspace.get("metadata") or {}).get("uid")
    ws_labels = workspace_labels(key)
    named = named_configmaps(workspace)

    async def owned_of(kind: ResourceKind) -> list[Object]:
        found = await cluster.list(kind, key.namespace, ws_labels)
        return [o for o in found.items if is_owned_by(o, uid)]

    async def nothing() -> protocol.ObjectList:
        return protocol.ObjectList()

    results = await asyncio.gather(
        cluster.list(protocol.NODE, labels=node_list_labels(workspace)),
        cluster.list(protocol.NODECLAIM, labels=ws_labels) if provisioning else nothing(),
        cluster.list(
            protocol.CONTROLLER_REVISION, key.namespace, {labels.LABEL_REVISION_WORKSPACE_NAME: key.name}
        ),
        *(owned_of(kind) for kind in OWNED_KINDS),
        *(read_configmap(cluster, ns, name) for ns, name in named),
    )
    nodes, claims, revisions = results[0], results[1], results[2]
    owned: dict[tuple[str, str], Object] = {}
    for kind, objs in zip(OWNED_KINDS, results[3:3 + len(OWNED_KINDS)], strict=True):
        for obj in objs:
            owned[(kind.key, obj["metadata"]["name"])] = obj
    return Observed(
        key=key,
        workspace=workspace,
        nodes=tuple(nodes.items),
        nodeclaims=tuple(claims.items),
        revisions=tuple(r for r in revisions.items if is_owned_by(r, uid)),
        owned=MappingProxyType(owned),
        configmaps=MappingProxyType(dict(zip(named, results[3 + len(OWNED_KINDS):], strict=True))),
    )
