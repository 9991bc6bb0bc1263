"""A stand-in for the node provisioner and the kubelet, driven step by step by a test.

There is no Karpenter, no kubelet and no workload controller in a test: this helper plays them
through the same `Cluster` protocol the controller uses. `provision()` turns pending NodeClaims
into Ready GPU Nodes (and removes the Nodes of deleted NodeClaims), `run_workloads()` reports
Deployments/StatefulSets as rolled out and ready, `start_jobs()`/`finish_jobs()` move tuning Jobs
along. Every step returns how many objects it changed, so a test can loop until nothing moves.
It writes under its own field managers, as the real components do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kaito.cluster import errors, protocol
from kaito.cluster.protocol import Cluster

PROVISIONER = "karpenter"
KUBELET = "kubelet"
WORKLOAD_CONTROLLER = "kube-controller-manager"
NOW = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class GPU:
    product: str = "NVIDIA-A100-SXM4-80GB"
    count: int = 1
    memory_mib: int = 81920


def _cond(type_: str, status: str = "True", **extra) -> dict:
    return {"type": type_, "status": status, "lastTransitionTime": NOW, **extra}


def _requirement(claim: Mapping, key: str) -> str | None:
    for req in (claim.get("spec") or {}).get("requirements") or []:
        if req.get("key") == key and req.get("operator") == "In" and req.get("values"):
            return req["values"][0]
    return None


def node_object(
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    instance_type: str | None = None,
    gpu: GPU | None = GPU(),
) -> dict:
    all_labels = dict(labels or {})
    if instance_type:
        all_labels["node.kubernetes.io/instance-type"] = instance_type
    if gpu is not None:
        all_labels.update(
            {
                "nvidia.com/gpu.product": gpu.product,
                "nvidia.com/gpu.count": str(gpu.count),
                "nvidia.com/gpu.memory": str(gpu.memory_mib),
            }
        )
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": all_labels}}


class FakeKubelet:
    def __init__(self, cluster: Cluster, *, gpu: GPU = GPU()) -> None:
        self.cluster = cluster
        self.gpu = gpu
        self.fail_launch: dict[str, str] = {}  # NodeClaim name -> launch failure message

    async def add_node(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        *,
        instance_type: str | None = None,
        gpu: GPU | None = GPU(),
        ready: bool = True,
    ) -> dict:
        """A node that exists outside KAITO (BYO, preferred nodes)."""
        await self.cluster.apply(
            node_object(name, labels, instance_type=instance_type, gpu=gpu), field_manager=KUBELET
        )
        return await self._set_node_status(name, ready, gpu)

    async def _set_node_status(self, name: str, ready: bool, gpu: GPU | None) -> dict:
        capacity = {"cpu": "8", "memory": "64Gi"}
        if gpu is not None:
            capacity["nvidia.com/gpu"] = str(gpu.count)
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name},
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": [_cond("Ready", "True" if ready else "False")],
            },
        }
        return await self.cluster.apply_status(body, field_manager=KUBELET)

    async def provision(self) -> int:
        """Launch every NodeClaim without a node; delete nodes whose NodeClaim is gone."""
        changed = 0
        claims = (await self.cluster.list(protocol.NODECLAIM)).items
        live = {f"node-{c['metadata']['name']}" for c in claims}
        for claim in claims:
            changed += await self.launch(claim)
        for node in (await self.cluster.list(protocol.NODE)).items:
            name = node["metadata"]["name"]
            if name.startswith(("node-ws", "node-rag")) and name not in live:
                await self._delete(protocol.NODE, name)
                changed += 1
        return changed

    async def launch(self, claim: Mapping) -> int:
        """Turn one pending NodeClaim into a Ready GPU node (or a launch failure); 1 if it acted."""
        name = claim["metadata"]["name"]
        node_name = f"node-{name}"
        status = claim.get("status") or {}
        if claim["metadata"].get("deletionTimestamp") or status.get("nodeName") or status.get("conditions"):
            return 0
        if name in self.fail_launch:
            failed = _cond("Launched", "False", reason="LaunchFailed", message=self.fail_launch[name])
            await self._claim_status(claim, {"conditions": [failed]})
            return 1
        instance_type = _requirement(claim, "node.kubernetes.io/instance-type")
        node_labels = {**(claim["metadata"].get("labels") or {})}
        await self.add_node(node_name, node_labels, instance_type=instance_type, gpu=self.gpu)
        await self._claim_status(
            claim,
            {
                "nodeName": node_name,
                "providerID": f"fake://{node_name}",
                "conditions": [_cond("Launched"), _cond("Registered"), _cond("Initialized"), _cond("Ready")],
            },
        )
        return 1

    async def _claim_status(self, claim: Mapping, status: dict) -> None:
        body = {
            "apiVersion": claim["apiVersion"],
            "kind": claim["kind"],
            "metadata": {"name": claim["metadata"]["name"]},
            "status": status,
        }
        await self.cluster.apply_status(body, field_manager=PROVISIONER)

    async def _delete(self, kind: protocol.ResourceKind, name: str, namespace: str | None = None) -> None:
        try:
            await self.cluster.delete(kind, name, namespace)
        except errors.NotFound:
            pass

    async def run_workloads(self, namespace: str | None = None) -> int:
        """Report every Deployment/StatefulSet whose spec the workload controller has not seen as
        rolled out with all replicas ready."""
        changed = 0
        for kind in (protocol.DEPLOYMENT, protocol.STATEFULSET):
            for obj in (await self.cluster.list(kind, namespace)).items:
                changed += await self.mark_ready(obj)
        return changed

    async def mark_ready(self, obj: Mapping) -> int:
        """One Deployment/StatefulSet rolled out and ready; 1 if its status had to change."""
        meta, st = obj["metadata"], obj.get("status") or {}
        if meta.get("deletionTimestamp"):
            return 0
        replicas = int((obj.get("spec") or {}).get("replicas", 1))
        want = {
            "observedGeneration": int(meta.get("generation") or 1),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }
        if all(st.get(k) == v for k, v in want.items()):
            return 0
        body = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "status": want,
        }
        try:
            await self.cluster.apply_status(body, field_manager=WORKLOAD_CONTROLLER)
        except errors.NotFound:
            return 0
        return 1

    async def _job_status(self, job: Mapping, status: dict) -> None:
        meta = job["metadata"]
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "status": status,
        }
        await self.cluster.apply_status(body, field_manager=WORKLOAD_CONTROLLER)

    async def start_jobs(self, namespace: str | None = None) -> int:
        changed = 0
        for job in (await self.cluster.list(protocol.JOB, namespace)).items:
            st = job.get("status") or {}
            if st.get("active") or st.get("succeeded") or st.get("conditions"):
                continue
            await self._job_status(job, {"active": 1, "ready": 1, "startTime": NOW})
            changed += 1
        return changed

    async def finish_jobs(self, namespace: str | None = None, *, succeed: bool = True) -> int:
        changed = 0
        for job in (await self.cluster.list(protocol.JOB, namespace)).items:
            st = job.get("status") or {}
            if st.get("succeeded") or st.get("conditions"):
                continue
            if succeed:
                status = {"active": 0, "ready": 0, "succeeded": 1, "conditions": [_cond("Complete")]}
            else:
                status = {
                    "active": 0,
                    "ready": 0,
                    "failed": 1,
                    "conditions": [
                        _cond(
                            "Failed",
                            reason="BackoffLimitExceeded",
                            message="Job has reached the specified backoff limit",
                        )
                    ],
                }
            await self._job_status(job, status)
            changed += 1
        return changed

    async def step(self) -> int:
        """Provision nodes and run workloads (not Jobs: tests decide how a Job ends)."""
        return await self.provision() + await self.run_workloads()
