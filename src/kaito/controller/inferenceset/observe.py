"""Observe: everything one reconcile of an InferenceSet needs, read in one go and frozen.

Children are the Workspaces of the set's namespace labelled `inferenceset.kaito.sh/created-by=<set>`
(KAITO's listing), kept only when their controller owner reference is this set's uid: the children
of an earlier set of the same name, still being deleted, are not this set's. Every labelled name is
kept apart too (`taken`): a new child never takes a name that exists. With the gateway option the
InferencePool and its endpoint picker's objects are read (by their `inferenceset.kaito.sh/gateway`
label), so an unchanged one is not written again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kaito.api import inferenceset
from kaito.cluster import errors, protocol
from kaito.cluster.protocol import Cluster, Object, ResourceKind
from kaito.controller.observe import is_owned_by
from kaito.manifests import gateway

# The kinds of the gateway objects (`kaito.manifests.gateway`), known to the cluster backends.
INFERENCE_POOL = protocol.register_kind(
    ResourceKind(gateway.POOL_API_VERSION, "InferencePool", "inferencepools"))
SERVICE_ACCOUNT = protocol.register_kind(ResourceKind("v1", "ServiceAccount", "serviceaccounts"))
ROLE = protocol.register_kind(ResourceKind("rbac.authorization.k8s.io/v1", "Role", "roles"))
ROLE_BINDING = protocol.register_kind(ResourceKind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"))
GATEWAY_KINDS: tuple[ResourceKind, ...] = (SERVICE_ACCOUNT, ROLE, ROLE_BINDING, protocol.CONFIGMAP,
                                           protocol.SERVICE, protocol.DEPLOYMENT, INFERENCE_POOL)


@dataclass(frozen=True, order=True)
class InferenceSetKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class ObservedSet:
    key: InferenceSetKey
    inference_set: Object | None  # None: gone
    children: tuple[Object, ...] = ()  # this set's child Workspaces (deleting ones included)
    taken: frozenset[str] = frozenset()  # every Workspace name carrying the set's label
    revisions: tuple[Object, ...] = ()
    # (kind key, name) -> the gateway objects found (read only with the gateway option on).
    gateway: Mapping[tuple[str, str], Object] = field(default_factory=lambda: MappingProxyType({}))


def created_by(key: InferenceSetKey) -> dict[str, str]:
    return {inferenceset.LABEL_CREATED_BY: key.name}


async def observe_inferenceset(cluster: Cluster, key: InferenceSetKey, *, gateway_on: bool) -> ObservedSet:
    """Read the set and its world; `ObservedSet(inference_set=None)` when the set is gone."""
    try:
        obj = await cluster.get(protocol.INFERENCESET, key.name, key.namespace)
    except errors.NotFound:
        return ObservedSet(key=key, inference_set=None)
    uid = (obj.get("metadata") or {}).get("uid")

    async def gateway_objects(kind: ResourceKind) -> list[Object]:
        found = await cluster.list(kind, key.namespace, {gateway.LABEL_GATEWAY: key.name})
        return [o for o in found.items if is_owned_by(o, uid)]

    kinds = GATEWAY_KINDS if gateway_on else ()
    workspaces, revisions, *pieces = await asyncio.gather(
        cluster.list(protocol.WORKSPACE, key.namespace, created_by(key)),
        cluster.list(protocol.CONTROLLER_REVISION, key.namespace, {inferenceset.LABEL_REVISION_NAME: key.name}),
        *(gateway_objects(kind) for kind in kinds),
    )
    found: dict[tuple[str, str], Object] = {}
    for kind, objs in zip(kinds, pieces, strict=True):
        for item in objs:
            found[(kind.key, item["metadata"]["name"])] = item
    return ObservedSet(
        key=key,
        inference_set=obj,
        children=tuple(w for w in workspaces.items if is_owned_by(w, uid)),
        taken=frozenset(w["metadata"]["name"] for w in workspaces.items),
        revisions=tuple(r for r in revisions.items if is_owned_by(r, uid)),
        gateway=MappingProxyType(found),
    )


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_ready(child: Mapping[str, Any]) -> bool:
    """A child counts as a ready replica: `WorkspaceSucceeded=True` and not being deleted (KAITO's
    `succeeded` phase; one going away is not counted on)."""
    if is_deleting(child):
        return False
    return any(c.get("type") == "WorkspaceSucceeded" and c.get("status") == "True"
               for c in (child.get("status") or {}).get("conditions") or [])
