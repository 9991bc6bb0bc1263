"""Observe: everything one reconcile of a RAGEngine needs to know, read in one go and frozen.

Owned objects (its Service and Deployment, its ControllerRevisions) are found by label and kept only
when their controller owner reference is this engine's uid; NodeClaims by the engine's labels (they
are cluster-scoped, so nothing owns them). Nodes are read only when the engine has `compute`. When
`inferenceService.url` names a Workspace (`target`), that Workspace and the URL of its Service are
read too, so planning knows whether the model it answers through is serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kaito.api import ragengine
from kaito.cluster import errors, protocol
from kaito.cluster.protocol import Cluster, Object, ResourceKind
from kaito.controller.observe import is_owned_by
from kaito.controller.ragengine import target as target_mod

OWNED_KINDS: tuple[ResourceKind, ...] = (protocol.SERVICE, protocol.DEPLOYMENT)


@dataclass(frozen=True, order=True)
class RAGEngineKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class InferenceTarget:
    """The Workspace `inferenceService.url` names, as found."""

    name: str
    path: str
    workspace: Object | None  # None: no Workspace of that name (the URL is used as written)
    base_url: str | None = None  # where its Service is reached; None: not yet (the local cluster)


@dataclass(frozen=True, kw_only=True)
class Observed:
    key: RAGEngineKey
    ragengine: Object | None  # None: gone
    nodes: tuple[Object, ...] = ()
    nodeclaims: tuple[Object, ...] = ()
    revisions: tuple[Object, ...] = ()
    owned: Mapping[tuple[str, str], Object] = field(default_factory=lambda: MappingProxyType({}))
    target: InferenceTarget | None = None

    def owned_object(self, kind: ResourceKind, name: str) -> Object | None:
        return self.owned.get((kind.key, name))


def ragengine_labels(key: RAGEngineKey) -> dict[str, str]:
    return {ragengine.LABEL_RAGENGINE: key.name, ragengine.LABEL_RAGENGINE_NAMESPACE: key.namespace}


def compute_labels(raw: Mapping[str, Any]) -> dict[str, str] | None:
    """`spec.compute.labelSelector.matchLabels` of a stored engine; None without `compute`."""
    compute = (raw.get("spec") or {}).get("compute")
    if not isinstance(compute, Mapping):
        return None
    selector = compute.get("labelSelector") or {}
    return dict(selector.get("matchLabels") or {}) if isinstance(selector, Mapping) else {}


def inference_url(raw: Mapping[str, Any]) -> str | None:
    service = (raw.get("spec") or {}).get("inferenceService")
    url = service.get("url") if isinstance(service, Mapping) else None
    return url if isinstance(url, str) else None


async def observe_target(cluster: Cluster, raw: Mapping[str, Any], namespace: str,
                         endpoints: target_mod.ServiceEndpoints) -> InferenceTarget | None:
    named = target_mod.find_workspace_target(inference_url(raw), namespace)
    if named is None:
        return None
    try:
        workspace = await cluster.get(protocol.WORKSPACE, named.name, namespace)
    except errors.NotFound:
        return InferenceTarget(name=named.name, path=named.path, workspace=None)
    base = await endpoints.service_url(cluster, namespace, named.name, target_mod.SERVICE_PORT)
    return InferenceTarget(name=named.name, path=named.path, workspace=workspace, base_url=base)


async def observe_ragengine(cluster: Cluster, key: RAGEngineKey, endpoints: target_mod.ServiceEndpoints, *,
                            provisioning: bool = True) -> Observed:
    """Read the engine and its world; `Observed(ragengine=None)` when it is gone."""
    try:
        raw = await cluster.get(protocol.RAGENGINE, key.name, key.namespace)
    except errors.NotFound:
        return Observed(key=key, ragengine=None)
    uid = (raw.get("metadata") or {}).get("uid")
    own_labels = ragengine_labels(key)
    node_labels = compute_labels(raw)

    async def owned_of(kind: ResourceKind) -> list[Object]:
        found = await cluster.list(kind, key.namespace, own_labels)
        return [o for o in found.items if is_owned_by(o, uid)]

    async def nothing() -> protocol.ObjectList:
        return protocol.ObjectList()

    results = await asyncio.gather(
        cluster.list(protocol.NODE, labels=node_labels) if node_labels is not None else nothing(),
        cluster.list(protocol.NODECLAIM, labels=own_labels) if provisioning else nothing(),
        cluster.list(protocol.CONTROLLER_REVISION, key.namespace, {ragengine.LABEL_REVISION_NAME: key.name}),
        observe_target(cluster, raw, key.namespace, endpoints),
        *(owned_of(kind) for kind in OWNED_KINDS),
    )
    nodes, claims, revisions, target = results[:4]
    owned: dict[tuple[str, str], Object] = {}
    for kind, objs in zip(OWNED_KINDS, results[4:], strict=True):
        for obj in objs:
            owned[(kind.key, obj["metadata"]["name"])] = obj
    return Observed(
        key=key,
        ragengine=raw,
        nodes=tuple(nodes.items),
        nodeclaims=tuple(claims.items),
        revisions=tuple(r for r in revisions.items if is_owned_by(r, uid)),
        owned=MappingProxyType(owned),
        target=target,
    )
