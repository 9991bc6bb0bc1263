"""The local node provisioner: NodeClaims become Nodes backed by this machine.

On a cluster, Karpenter buys a GPU VM for each NodeClaim. In the embedded cluster there is one
machine, so every NodeClaim gets a Node that describes it: its CPUs, memory and GPUs (found with
`nvidia-smi`; torch is never imported on the operator side), the claim's labels plus
`kubernetes.io/hostname`, the instance type the claim asked for (the controller selects nodes by
it) and the `nvidia.com/gpu.*` labels of GPU Feature Discovery. The instance type cannot be
honoured here, so the NodeClaim's conditions say so and what the machine really has.

Writes go through the `Cluster` protocol under the field manager `karpenter`, as the real
component's would; the controller cannot tell this provisioner from Karpenter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaito.api import labels
from kaito.cluster import errors, protocol
from kaito.cluster.events import now_rfc3339
from kaito.cluster.protocol import Cluster

log = logging.getLogger(__name__)

FIELD_MANAGER = "karpenter"
LABEL_LOCAL_NODE = "kaito.sh/local-node"  # marks Nodes this machine backs (the runner schedules on them)
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
ANNOTATION_CLAIM = "kaito.sh/local-nodeclaim"
CLAIM_FINALIZER = "karpenter.sh/termination"


@dataclass(frozen=True)
class GPUInfo:
    product: str
    memory_mib: int


@dataclass(frozen=True)
class MachineFacts:
    """What this machine has; measured once at start-up."""

    hostname: str
    cpus: int
    memory_bytes: int
    gpus: tuple[GPUInfo, ...] = ()

    def describe(self) -> str:
        gpus = f"{len(self.gpus)} × {self.gpus[0].product}" if self.gpus else "no GPU"
        return f"{self.cpus} CPU, {self.memory_bytes / 2**30:.0f} GiB memory, {gpus}"


def read_gpus(run=subprocess.run) -> tuple[GPUInfo, ...]:
    """GPUs reported by `nvidia-smi`; none when it is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ()
    try:
        out = run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                  capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return parse_nvidia_smi(out)


def parse_nvidia_smi(text: str) -> tuple[GPUInfo, ...]:
    gpus = []
    for line in text.splitlines():
        name, _, memory = line.rpartition(",")
        if not name.strip():
            continue
        try:
            mib = int(float(memory.strip()))
        except ValueError:
            continue
        gpus.append(GPUInfo(name.strip().replace(" ", "-"), mib))
    return tuple(gpus)


def read_machine_facts() -> MachineFacts:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    return MachineFacts(socket.gethostname(), os.cpu_count() or 1, memory, read_gpus())


def _requirement(claim: Mapping[str, Any], key: str) -> str | None:
    for req in (claim.get("spec") or {}).get("requirements") or []:
        if req.get("key") == key and req.get("operator") == "In" and req.get("values"):
            return req["values"][0]
    return None


def build_node_name(claim_name: str) -> str:
    return f"local-{claim_name}"


def build_node(claim: Mapping[str, Any], machine: MachineFacts) -> dict[str, Any]:
    """The Node object for a NodeClaim (metadata and spec; the status is `build_node_status`)."""
    meta = claim.get("metadata") or {}
    name = build_node_name(meta.get("name") or "")
    node_labels = dict(meta.get("labels") or {})
    for req in (claim.get("spec") or {}).get("requirements") or []:
        # Karpenter labels the node with every single-valued `In` requirement (instance type, os, ...).
        if req.get("operator") == "In" and len(req.get("values") or []) == 1:
            node_labels.setdefault(req["key"], req["values"][0])
    node_labels.update({"kubernetes.io/hostname": name, LABEL_LOCAL_NODE: "true", "kubernetes.io/os": "linux"})
    if machine.gpus:
        node_labels.update({
            "nvidia.com/gpu.product": machine.gpus[0].product,
            "nvidia.com/gpu.count": str(len(machine.gpus)),
            "nvidia.com/gpu.memory": str(machine.gpus[0].memory_mib),
        })
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels,
                     "annotations": {ANNOTATION_CLAIM: meta.get("name") or ""}},
        # The claim's taints (sku=gpu:NoSchedule) are kept: the workloads tolerate them.
        "spec": {"taints": list((claim.get("spec") or {}).get("taints") or []),
                 "providerID": f"local://{machine.hostname}/{name}"},
    }


def build_node_status(machine: MachineFacts) -> dict[str, Any]:
    capacity = {"cpu": str(machine.cpus), "memory": f"{machine.memory_bytes // 1024}Ki", "pods": "110"}
    if machine.gpus:
        capacity["nvidia.com/gpu"] = str(len(machine.gpus))
    now = now_rfc3339()
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                      {"type": "Hostname", "address": machine.hostname}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": f"backed by this machine ({machine.describe()})",
                        "lastTransitionTime": now, "lastHeartbeatTime": now}],
    }


def build_claim_status(claim: Mapping[str, Any], node_name: str, machine: MachineFacts) -> dict[str, Any]:
    wanted = _requirement(claim, LABEL_INSTANCE_TYPE) or "(none)"
    message = (f"instance type {wanted} cannot be honoured by the local cluster; running on this "
               f"machine instead: {machine.describe()}")
    now = now_rfc3339()

    def cond(type_: str, reason: str, msg: str = "") -> dict[str, Any]:
        return {"type": type_, "status": "True", "reason": reason, "message": msg, "lastTransitionTime": now}

    return {
        "nodeName": node_name,
        "providerID": f"local://{machine.hostname}/{node_name}",
        "imageID": "local",
        "capacity": build_node_status(machine)["capacity"],
        "conditions": [cond("Launched", "LocalMachine", message), cond("Registered", "Registered"),
                       cond("Initialized", "Initialized"), cond("Ready", "Ready", message)],
    }


class LocalProvisioner:
    """Watches NodeClaims; launches a local Node for each, removes it when the claim goes."""

    def __init__(self, cluster: Cluster, machine: MachineFacts | None = None, *, resync_s: float = 5.0) -> None:
        self.cluster = cluster
        self.machine = machine or read_machine_facts()
        self.resync_s = resync_s
        self._wake = asyncio.Event()

    async def sync(self) -> int:
        """One pass over every NodeClaim and local Node; returns how many objects it changed."""
        changed = 0
        claims = (await self.cluster.list(protocol.NODECLAIM)).items
        wanted = set()
        for claim in claims:
            meta = claim["metadata"]
            node_name = build_node_name(meta["name"])
            if meta.get("deletionTimestamp"):
                changed += await self._terminate(claim, node_name)
                continue
            wanted.add(node_name)
            changed += await self._launch(claim, node_name)
        nodes = (await self.cluster.list(protocol.NODE, labels={LABEL_LOCAL_NODE: "true"})).items
        for node in nodes:
            if node["metadata"]["name"] not in wanted:
                changed += await self._delete_node(node["metadata"]["name"])
        return changed

    async def _launch(self, claim: Mapping[str, Any], node_name: str) -> int:
        meta = claim["metadata"]
        changed = 0
        if CLAIM_FINALIZER not in (meta.get("finalizers") or []):
            # Karpenter's own finalizer: the claim stays until its node is gone.
            await self.cluster.apply({"apiVersion": claim["apiVersion"], "kind": claim["kind"],
                                      "metadata": {"name": meta["name"], "finalizers": [CLAIM_FINALIZER]}},
                                     field_manager=FIELD_MANAGER)
            changed += 1
        try:
            await self.cluster.get(protocol.NODE, node_name)
            exists = True
        except errors.NotFound:
            exists = False
        if not exists:
            await self.cluster.apply(build_node(claim, self.machine), field_manager=FIELD_MANAGER)
            await self.cluster.apply_status({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node_name},
                                             "status": build_node_status(self.machine)},
                                            field_manager=FIELD_MANAGER)
            log.info("node %s launched for NodeClaim %s", node_name, meta["name"])
            await self._tell_workspace(claim, node_name)
            changed += 1
        if (claim.get("status") or {}).get("nodeName") != node_name:
            await self.cluster.apply_status({"apiVersion": claim["apiVersion"], "kind": claim["kind"],
                                             "metadata": {"name": meta["name"]},
                                             "status": build_claim_status(claim, node_name, self.machine)},
                                            field_manager=FIELD_MANAGER)
            changed += 1
        return changed

    async def _tell_workspace(self, claim: Mapping[str, Any], node_name: str) -> None:
        """An Event on the claim's Workspace: `kaito describe` shows what the machine really offers."""
        claim_labels = claim["metadata"].get("labels") or {}
        name = claim_labels.get(labels.LABEL_WORKSPACE_NAME)
        namespace = claim_labels.get(labels.LABEL_WORKSPACE_NAMESPACE)
        if not name or not namespace:
            return
        message = build_claim_status(claim, node_name, self.machine)["conditions"][0]["message"]
        involved = {"apiVersion": protocol.WORKSPACE.api_version, "kind": protocol.WORKSPACE.kind,
                    "metadata": {"name": name, "namespace": namespace}}
        await self.cluster.emit_event(involved, "Normal", "LocalNode", f"node {node_name}: {message}")

    async def _terminate(self, claim: Mapping[str, Any], node_name: str) -> int:
        changed = await self._delete_node(node_name)
        meta = claim["metadata"]
        if CLAIM_FINALIZER in (meta.get("finalizers") or []):
            with contextlib.suppress(errors.NotFound):
                await self.cluster.apply({"apiVersion": claim["apiVersion"], "kind": claim["kind"],
                                          "metadata": {"name": meta["name"], "finalizers": []}},
                                         field_manager=FIELD_MANAGER)
            changed += 1
        return changed

    async def _delete_node(self, name: str) -> int:
        try:
            await self.cluster.delete(protocol.NODE, name)
        except errors.NotFound:
            return 0
        log.info("node %s removed", name)
        return 1

    async def _watch(self) -> None:
        while True:
            try:
                async for _ in self.cluster.watch(protocol.NODECLAIM):
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep watching through a flaky store
                log.warning("NodeClaim watch failed: %s", exc)
                await asyncio.sleep(1.0)

    async def run(self) -> None:
        """Until cancelled: sync on every NodeClaim change, and every `resync_s` seconds."""
        watcher = asyncio.create_task(self._watch(), name="provisioner-watch")
        try:
            while True:
                try:
                    await self.sync()
                except errors.ClusterError as exc:
                    log.warning("provisioner pass failed: %s", exc)
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # races with the event being set, and the loop would then never stop (seen in the tests).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.resync_s):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
