"""The local control plane's InferenceSet serving: one gateway (and autoscaler) per set, fed from the store.

On a cluster the Gateway API Inference Extension and KEDA serve and scale a set; here
`serving.endpoint.InferenceSetEndpoint` does, one per set, on the control plane's event loop. This
component keeps them in step with the store, level-triggered: watches of InferenceSets, Workspaces
and Pods (the set's children and their pods carry `inferenceset.kaito.sh/created-by`) mark a set
dirty, and one pass per dirty set reads the set, its children and their pods and then
- starts its endpoint when the set appears, stops it (its port closed) as soon as the set is being
  deleted or gone;
- gives the gateway every child that is not being deleted, by name, ready when its model server's
  pod is Ready (listing a child that is still loading makes the gateway hold requests rather than
  answer 503), at the local port the runner gave the pod's port 5000;
- sets the autoscaling policy from the annotations (`set_policy.build_scale_policy`); the
  autoscaler writes `spec.replicas` through the scale subresource (`set_policy.ClusterScaleTarget`).
`endpoints()` is what `kaito endpoint` and `kaito chat` read (through `on_change`, which the control
plane uses to keep `$KAITO_HOME/endpoints.json`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from kaito.api import inferenceset, labels
from kaito.cluster import errors, protocol
from kaito.cluster.local import runner
from kaito.cluster.protocol import Cluster, ResourceKind
from kaito.operator import set_policy
from kaito.operator.serving.autoscaler import POLLING_INTERVAL_S
from kaito.operator.serving.endpoint import InferenceSetEndpoint
from kaito.operator.serving.gateway import GatewaySettings
from kaito.operator.serving.policy import ScalePolicy
from kaito.operator.serving.replicas import Replica

log = logging.getLogger("kaito.local")
Key = tuple[str, str]  # (namespace, set name)
WATCHED: tuple[ResourceKind, ...] = (protocol.INFERENCESET, protocol.WORKSPACE, protocol.POD)


def _key_of(kind: ResourceKind, obj: Mapping[str, Any]) -> Key | None:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or protocol.DEFAULT_NAMESPACE
    if kind == protocol.INFERENCESET:
        return namespace, meta.get("name") or ""
    owner = (meta.get("labels") or {}).get(inferenceset.LABEL_CREATED_BY)
    return (namespace, owner) if owner else None


def build_replicas(children: list[Mapping[str, Any]], pods: list[Mapping[str, Any]]) -> list[Replica]:
    """The gateway's view of a set: every child not being deleted, ready when a pod of it serves."""
    by_child: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        child = ((pod.get("metadata") or {}).get("labels") or {}).get(labels.LABEL_WORKSPACE_NAME)
        if child:
            by_child.setdefault(child, []).append(pod)
    out = []
    for child in children:
        meta = child.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        url = runner.find_local_endpoint(by_child.get(meta.get("name") or "", []))
        out.append(Replica(name=meta["name"], base_url=url or "", ready=url is not None))
    return sorted(out, key=lambda r: r.name)


class LocalInferenceSets:
    def __init__(self, cluster: Cluster, *, interval_s: float = POLLING_INTERVAL_S,
                 on_change: Callable[[dict[str, str]], None] | None = None) -> None:
        self.cluster = cluster
        self.interval_s = interval_s
        self.on_change = on_change
        self.sets: dict[Key, InferenceSetEndpoint] = {}
        self._policies: dict[Key, ScalePolicy | None] = {}
        self._dirty: set[Key] = set()
        self._wake = asyncio.Event()

    def endpoints(self) -> dict[str, str]:
        """`namespace/name` → the set's local gateway URL."""
        return {f"{ns}/{name}": ep.url for (ns, name), ep in sorted(self.sets.items())}

    async def run(self) -> None:
        """Until cancelled; every endpoint is stopped (its port closed) on the way out."""
        watches = [asyncio.create_task(self._watch(kind), name=f"local-sets-{kind.kind}") for kind in WATCHED]
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._dirty:
                    key = self._dirty.pop()
                    try:
                        await self.sync(key)
                    except (errors.ClusterError, OSError) as exc:
                        log.warning("InferenceSet %s/%s: %s; trying again", *key, exc)
                        self._mark(key)
                        await asyncio.sleep(1.0)
                    except Exception:  # noqa: BLE001 - a bug in one set must not stop the others' gateways
                        log.exception("InferenceSet %s/%s: local gateway sync failed", *key)
                        await asyncio.sleep(1.0)
        finally:
            for task in watches:
                task.cancel()
            for task in watches:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for key in list(self.sets):
                await self._stop(key)

    def _mark(self, key: Key) -> None:
        self._dirty.add(key)
        self._wake.set()

    async def _watch(self, kind: ResourceKind) -> None:
        while True:
            try:
                async for event in self.cluster.watch(kind):
                    key = _key_of(kind, event.object)
                    if key is not None:
                        self._mark(key)
            except errors.Gone:
                continue  # re-list: every object comes again as ADDED
            except errors.ClusterError as exc:
                log.warning("watch of %s for the local gateways failed (%s); retrying", kind.kind, exc)
                await asyncio.sleep(1.0)

    async def sync(self, key: Key) -> None:
        """Bring one set's endpoint in step with the store (see the module docstring)."""
        namespace, name = key
        try:
            obj = await self.cluster.get(protocol.INFERENCESET, name, namespace)
        except errors.NotFound:
            obj = None
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            await self._stop(key)
            return
        selector = {inferenceset.LABEL_CREATED_BY: name}
        children = (await self.cluster.list(protocol.WORKSPACE, namespace, selector)).items
        pods = (await self.cluster.list(protocol.POD, namespace, selector)).items
        endpoint = self.sets.get(key)
        if endpoint is None:
            target = set_policy.ClusterScaleTarget(self.cluster, namespace, name)
            endpoint = InferenceSetEndpoint(GatewaySettings(model_name=name), target=target,
                                            interval_s=self.interval_s)
            await endpoint.start()
            self.sets[key] = endpoint
            self._policies[key] = None
            log.info("InferenceSet %s/%s: gateway on %s", namespace, name, endpoint.url)
            self._changed()
        endpoint.update_replicas(build_replicas(children, pods))
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        policy = set_policy.build_scale_policy(meta.get("annotations") or {}, node_count_limit=spec.get("nodeCountLimit"),
                                               target_node_count=set_policy.read_target_node_count(children))
        if policy != self._policies.get(key):
            await endpoint.set_policy(policy)
            self._policies[key] = policy
            log.info("InferenceSet %s/%s: autoscaling %s", namespace, name,
                     "off" if policy is None else f"{policy.min_replicas}..{policy.max_replicas} replicas")

    async def _stop(self, key: Key) -> None:
        endpoint = self.sets.pop(key, None)
        self._policies.pop(key, None)
        if endpoint is None:
            return
        with contextlib.suppress(Exception):
            await endpoint.stop()
        log.info("InferenceSet %s/%s: gateway stopped", *key)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.endpoints())
            except OSError as exc:
                log.warning("could not record the InferenceSet endpoints: %s", exc)
