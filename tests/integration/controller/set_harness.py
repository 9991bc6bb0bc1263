"""Test harness for InferenceSets: a set factory and a driver that runs the InferenceSet and Workspace
reconcilers and the fake kubelet in turns until nothing moves (children become ready or go)."""

from __future__ import annotations

import copy
from typing import Any

from kaito.api import inferenceset
from kaito.cluster import protocol
from kaito.controller.inferenceset.observe import InferenceSetKey
from kaito.controller.inferenceset.reconciler import InferenceSetReconciler
from kaito.controller.observe import WorkspaceKey
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings
from tests.integration.controller.harness import SKU
from tests.support.kubelet import FakeKubelet

SET_KEY = InferenceSetKey("default", "chat")
SETTINGS = Settings(pending_requeue_s=0.01)


def make_inferenceset(name: str = "chat", replicas: int | None = 1, **overrides: Any) -> dict:
    """A `kaito.sh/v1beta1` InferenceSet; `overrides` replace `spec` keys (None removes one)."""
    spec: dict[str, Any] = {
        "replicas": replicas,
        "labelSelector": {"matchLabels": {"apps": name}},
        "template": {"resource": {"instanceType": SKU}, "inference": {"preset": {"name": "phi-4-mini-instruct"}}},
    }
    for key, value in overrides.items():
        spec[key] = copy.deepcopy(value)
    return {"apiVersion": "kaito.sh/v1beta1", "kind": "InferenceSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {k: v for k, v in spec.items() if v is not None}}


async def children(cluster, key: InferenceSetKey = SET_KEY) -> list[dict]:
    found = await cluster.list(protocol.WORKSPACE, key.namespace, {inferenceset.LABEL_CREATED_BY: key.name})
    return found.items


async def live_children(cluster, key: InferenceSetKey = SET_KEY) -> list[dict]:
    return [c for c in await children(cluster, key) if not c["metadata"].get("deletionTimestamp")]


async def scale(cluster, replicas: int, key: InferenceSetKey = SET_KEY) -> None:
    await cluster.scale(protocol.INFERENCESET, key.name, key.namespace, replicas=replicas, field_manager="kubectl")


class SetDriver:
    """Both reconcilers over one cluster, with the fake kubelet playing nodes and workloads."""

    def __init__(self, cluster, kubelet: FakeKubelet, settings: Settings = SETTINGS) -> None:
        self.cluster = cluster
        self.kubelet = kubelet
        self.sets = InferenceSetReconciler(cluster, settings)
        self.workspaces = Reconciler(cluster, settings)

    async def round(self, key: InferenceSetKey = SET_KEY, *, kubelet: bool = True) -> int:
        """One pass: the set, then every child, then the kubelet; returns how much moved."""
        before = getattr(self.cluster, "total", 0)
        await self.sets.reconcile(key)
        for child in await children(self.cluster, key):
            await self.workspaces.reconcile(WorkspaceKey(key.namespace, child["metadata"]["name"]))
        moved = await self.kubelet.step() if kubelet else 0
        return moved + (getattr(self.cluster, "total", 0) - before)

    async def settle(self, key: InferenceSetKey = SET_KEY, *, rounds: int = 40, kubelet: bool = True) -> int:
        for n in range(rounds):
            if await self.round(key, kubelet=kubelet) == 0:
                return n
        raise AssertionError(f"no convergence after {rounds} rounds")
