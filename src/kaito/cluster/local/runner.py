"""The local pod runner: Deployments, StatefulSets and Jobs on local Nodes run as processes here.

It plays the workload controllers and the kubelet of a cluster for this one machine: it decides
which pods each workload needs (replicas; a new template means new pods), schedules them on the
Ready Nodes the local provisioner made (node affinity and nodeSelector honoured; a pod that asks for
no node at all runs on this machine, `THIS_MACHINE`, as a cluster's system nodes would take it), runs each through
a `PodWorker`, and writes back what Kubernetes would: Pod objects (phase, readiness, restarts, the
local port of each container port in the `kaito.sh/local-ports` annotation), Deployment and
StatefulSet replica counts and conditions, Job succeeded/failed with conditions. Images other than
our runtime image cannot run here: the pod says so, the workload's conditions say so, and an Event
is recorded on the workload and its Workspace.

All writes happen in `sync`, one pass at a time, triggered by watch events and by pod workers,
Events included: the kubelet's (Unhealthy, Killing, BackOff) as the workers queue them. A pod
being stopped (its grace period running) keeps its name: its replacement under the same name
starts once it is gone, and a pass never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaito.cluster import errors, protocol
from kaito.cluster.local import pods, processes, statuses
from kaito.cluster.local.podworker import PodContext, PodWorker, decode_secret
from kaito.cluster.local.provisioner import LABEL_LOCAL_NODE
from kaito.cluster.protocol import Cluster

log = logging.getLogger(__name__)

KUBELET = "kubelet"
WORKLOAD_CONTROLLER = "kube-controller-manager"
ANNOTATION_PORTS = "kaito.sh/local-ports"  # JSON {"5000": 41234}: container port → local port
ANNOTATION_LOG = "kaito.sh/local-log"
WORKLOADS = (protocol.DEPLOYMENT, protocol.STATEFULSET, protocol.JOB)
THIS_MACHINE = pods.THIS_MACHINE  # the node name of pods that ask for no node


@dataclass(frozen=True)
class PodWant:
    kind: protocol.ResourceKind
    workload: Mapping[str, Any]
    name: str
    template: Mapping[str, Any]
    template_hash: str


def plan_pods(kind: protocol.ResourceKind, workload: Mapping[str, Any]) -> list[PodWant]:
    """The pods a workload needs now (deterministic names, so a restart finds the same ones)."""
    meta, spec = workload.get("metadata") or {}, workload.get("spec") or {}
    if meta.get("deletionTimestamp"):
        return []
    template = spec.get("template") or {}
    digest = pods.compute_template_hash(template)
    name = meta.get("name") or ""
    if kind == protocol.JOB:
        names = [f"{name}-{digest[:5]}"]
    elif kind == protocol.STATEFULSET:
        names = [f"{name}-{i}" for i in range(int(spec.get("replicas", 1) or 0))]
    else:
        names = [f"{name}-{digest}-{i}" for i in range(int(spec.get("replicas", 1) or 0))]
    return [PodWant(kind, workload, n, template, digest) for n in names]


def find_containers_needing_cluster(workload: Mapping[str, Any], *, is_runtime_image: Callable[[str], bool],
                                    images_root: Path) -> list[Mapping[str, Any]]:
    """The containers of a Deployment, StatefulSet or Job that this runner cannot run (their images
    need a Kubernetes cluster): what `kaito apply` refuses before writing anything."""
    pod_spec = (((workload.get("spec") or {}).get("template") or {}).get("spec")) or {}
    ways = pods.classify_pod_containers(pod_spec, is_runtime_image=is_runtime_image, images_root=images_root,
                                        runs_to_completion=workload.get("kind") == protocol.JOB.kind)
    return [c for c, way in ways if way == "needs-cluster"]


def _is_ready(obj: Mapping[str, Any]) -> bool:
    """A Pod's or a Node's `Ready` condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _annotation(pod: Mapping[str, Any], key: str) -> str:
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(key) or ""


def find_local_endpoint(pod_list: list[Mapping[str, Any]], port: int = 5000) -> str | None:
    """The local URL of the first Ready pod serving container `port` (the model server's 5000),
    read from the local-ports annotation this runner writes; None when no pod serves it yet."""
    for pod in pod_list:
        ports = json.loads(_annotation(pod, ANNOTATION_PORTS) or "{}")
        if _is_ready(pod) and str(port) in ports:
            return f"http://{pods.LOCAL_HOST}:{ports[str(port)]}"
    return None


def find_pod_logs(pod_list: list[Mapping[str, Any]]) -> list[Path]:
    """The log files this runner writes for these pods, those that exist."""
    paths = [Path(_annotation(pod, ANNOTATION_LOG)) for pod in pod_list]
    return [p for p in paths if p.name and p.exists()]


def _owner_ref(workload: Mapping[str, Any]) -> dict[str, Any]:
    meta = workload["metadata"]
    return {"apiVersion": workload["apiVersion"], "kind": workload["kind"], "name": meta["name"],
            "uid": meta.get("uid"), "controller": True, "blockOwnerDeletion": True}


class LocalRunner:
    def __init__(self, cluster: Cluster, home: Path, *, is_runtime_image: Callable[[str], bool],
                 has_gpu: bool = False, resync_s: float = 2.0, vllm_python: str | None = None) -> None:
        """`vllm_python`: the interpreter vLLM model servers run in (`vllm_runtime`); None: this one."""
        self.cluster = cluster
        self.home = Path(home)
        self.is_runtime_image = is_runtime_image
        self.has_gpu = has_gpu
        self.vllm_python = vllm_python
        self.resync_s = resync_s
        self.workers: dict[tuple[str, str], PodWorker] = {}
        self._owners: dict[tuple[str, str], PodWant] = {}
        self._written: dict[tuple[str, str, str], Any] = {}  # what we last wrote, to write only changes
        self._cache: dict[tuple[str, str, str], Mapping[str, str] | None] = {}
        self._stopping: dict[tuple[str, str], asyncio.Task] = {}  # pods whose processes are being stopped
        self._pod_refs: dict[tuple[str, str], dict[str, Any]] = {}  # the stored Pod, for its Events
        self._wake = asyncio.Event()

    def changed(self) -> None:
        self._wake.set()

    # -- lookups for pods -------------------------------------------------------------------------

    def _lookup(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        return self._cache.get((kind, namespace, name))

    async def _refresh_config(self) -> None:
        cache: dict[tuple[str, str, str], Mapping[str, str] | None] = {}
        for obj in (await self.cluster.list(protocol.CONFIGMAP)).items:
            cache[("ConfigMap", obj["metadata"].get("namespace") or "default", obj["metadata"]["name"])] = {
                k: str(v) for k, v in (obj.get("data") or {}).items()}
        for obj in (await self.cluster.list(protocol.SECRET)).items:
            cache[("Secret", obj["metadata"].get("namespace") or "default", obj["metadata"]["name"])] = decode_secret(obj)
        self._cache = cache

    def _context(self, want: PodWant) -> PodContext:
        async def push_target() -> str | None:
            meta = want.workload["metadata"]
            owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == "Workspace"), None)
            if owner is None:
                return None
            try:
                ws = await self.cluster.get(protocol.WORKSPACE, owner["name"], meta.get("namespace"))
            except errors.NotFound:
                return None
            return ((ws.get("tuning") or {}).get("output") or {}).get("image")

        return PodContext(home=self.home, has_gpu=self.has_gpu, is_runtime_image=self.is_runtime_image,
                          lookup=self._lookup, push_target=push_target, changed=self.changed,
                          vllm_python=self.vllm_python)

    # -- one pass ----------------------------------------------------------------------------------

    async def sync(self) -> None:
        await self._refresh_config()
        node_list = (await self.cluster.list(protocol.NODE, labels={LABEL_LOCAL_NODE: "true"})).items
        ready_nodes = [n for n in node_list if _node_ready(n)]
        wanted: dict[tuple[str, str], PodWant] = {}
        workloads: list[tuple[protocol.ResourceKind, dict]] = []
        for kind in WORKLOADS:
            for obj in (await self.cluster.list(kind)).items:
                workloads.append((kind, obj))
                for want in plan_pods(kind, obj):
                    wanted[(obj["metadata"].get("namespace") or "default", want.name)] = want
        for key, worker in list(self.workers.items()):
            want = wanted.get(key)
            old = self._owners.get(key)
            replace = (want is None or want.template_hash != worker.template_hash
                       or (old is not None and old.workload["metadata"].get("uid") != want.workload["metadata"].get("uid"))
                       or (worker.node is None and _pick_node(want.template, ready_nodes) is not None))
            if replace:
                del self.workers[key]
                self._owners.pop(key, None)
                self._stopping[key] = asyncio.create_task(self._stop(key, worker, delete=want is None),
                                                          name=f"stop-pod-{key[0]}/{key[1]}")
        # A Job that ran to its end before this runner started (an earlier control plane ran it) is
        # done: its pod is not run again (a failed tuning must not turn into a success, a finished
        # one must not rewrite its adapter), and its Pod and status stay as they were.
        done = {key for key, want in wanted.items()
                if want.kind == protocol.JOB and key not in self.workers and statuses.job_finished(want.workload)}
        for key, want in wanted.items():
            if key in self.workers or key in self._stopping or key in done:
                continue
            spec = want.template.get("spec") or {}
            worker = PodWorker(self._context(want), namespace=key[0], name=key[1], template=want.template,
                               template_hash=want.template_hash, node=_pick_node(want.template, ready_nodes),
                               restart_always=want.kind != protocol.JOB and spec.get("restartPolicy", "Always") == "Always",
                               backoff_limit=int((want.workload.get("spec") or {}).get("backoffLimit", 6)))
            self.workers[key], self._owners[key] = worker, want
            worker.start()
        for obj in (await self.cluster.list(protocol.POD)).items:
            key = (obj["metadata"].get("namespace") or "default", obj["metadata"]["name"])
            if key not in self.workers and key not in self._stopping and key not in done:
                await self._delete_pod(*key)
        for key, worker in self.workers.items():
            await self._write_pod(key, worker)
        finished = {want.workload["metadata"].get("uid") for key, want in wanted.items() if key in done}
        for kind, obj in workloads:
            if obj["metadata"].get("uid") not in finished:
                await self._write_workload(kind, obj)

    async def _stop(self, key: tuple[str, str], worker: PodWorker, *, delete: bool) -> None:
        """Stop a pod's processes (its grace period, then SIGKILL) off the pass; then forget the Pod."""
        try:
            await worker.stop()
            if delete:
                await self._delete_pod(*key)
        except errors.ClusterError as exc:
            log.warning("pod %s/%s stopped, but its Pod object stays: %s", *key, exc)
        finally:
            self._stopping.pop(key, None)
            self.changed()

    async def _delete_pod(self, namespace: str, name: str) -> None:
        self._pod_refs.pop((namespace, name), None)
        self._written.pop(("Pod", namespace, name), None)
        self._written.pop(("PodStatus", namespace, name), None)
        self._written.pop(("ProbeError", namespace, name), None)
        with contextlib.suppress(errors.NotFound):
            await self.cluster.delete(protocol.POD, name, namespace)

    async def _write_pod(self, key: tuple[str, str], worker: PodWorker) -> None:
        """Write the Pod and its status where they differ from what the store last returned.

        Both bodies are built from one snapshot of the worker's state before any await, and what
        counts as written is read back from the store's answer: the worker changes its state while
        a write is in flight (PodInitializing → Running), and remembering the state *after* the
        write as written would lose that change until the next one, forever for a pod that never
        becomes ready.
        """
        want = self._owners[key]
        meta = dict(want.template.get("metadata") or {})
        body = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": key[1], "namespace": key[0], "labels": dict(meta.get("labels") or {}),
                         "ownerReferences": [_owner_ref(want.workload)],
                         "annotations": {ANNOTATION_PORTS: json.dumps({str(k): v for k, v in worker.state.ports.items()}),
                                         ANNOTATION_LOG: str(worker.log_path)}},
            "spec": {**(want.template.get("spec") or {}), "nodeName": worker.node or ""},
        }
        status = statuses.build_pod_status(worker)
        probe_error = worker.state.probe_error
        obj_tag, status_tag = ("Pod", *key), ("PodStatus", *key)
        if self._written.get(obj_tag) != _signature(body, body):
            stored = await self.cluster.apply(body, field_manager=KUBELET)
            self._written[obj_tag] = _signature(stored, body)
            self._pod_refs[key] = {"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": key[1], "namespace": key[0], "uid": stored["metadata"].get("uid")}}
        sent = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": key[1], "namespace": key[0]}, "status": status}
        if self._written.get(status_tag) != _signature(sent["status"], sent["status"]):
            stored = await self.cluster.apply_status(sent, field_manager=KUBELET)
            self._written[status_tag] = _signature(stored.get("status") or {}, sent["status"])
        involved = self._pod_refs.get(key)
        if involved is None:
            return
        if probe_error and self._written.get(("ProbeError", *key)) != probe_error:
            await self.cluster.emit_event(involved, "Warning", "Unhealthy", probe_error)
            self._written[("ProbeError", *key)] = probe_error
        while worker.state.events:
            await self.cluster.emit_event(involved, *worker.state.events.pop(0))

    async def _write_workload(self, kind: protocol.ResourceKind, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        mine = [w for k, w in self.workers.items()
                if k[0] == ns and self._owners[k].workload["metadata"].get("uid") == meta.get("uid")]
        status = statuses.build_job_status(mine, obj) if kind == protocol.JOB else statuses.build_workload_status(mine, obj)
        tag = (kind.kind, ns, meta["name"])
        signature = json.dumps(statuses.compute_timeless(status), sort_keys=True)
        if self._written.get(tag) == signature or statuses.compute_timeless(obj.get("status") or {}) == statuses.compute_timeless(status):
            self._written[tag] = signature
            return
        with contextlib.suppress(errors.NotFound):
            await self.cluster.apply_status({"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                                             "metadata": {"name": meta["name"], "namespace": ns}, "status": status},
                                            field_manager=WORKLOAD_CONTROLLER)
        self._written[tag] = signature
        problem = next((w.state for w in mine if w.state.reason in ("ImageNeedsCluster", "Unschedulable",
                                                                    "CreateContainerConfigError")), None)
        if problem is not None:
            await self.cluster.emit_event(dict(obj), "Warning", problem.reason, problem.message)
            owner = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == "Workspace"), None)
            if owner is not None:
                involved = {"apiVersion": owner["apiVersion"], "kind": "Workspace",
                            "metadata": {"name": owner["name"], "namespace": ns, "uid": owner.get("uid")}}
                await self.cluster.emit_event(involved, "Warning", problem.reason, problem.message)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def _watch(self, kind: protocol.ResourceKind) -> None:
        while True:
            try:
                async for _ in self.cluster.watch(kind):
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep watching through a flaky store
                log.warning("watch of %s failed: %s", kind.kind, exc)
                await asyncio.sleep(1.0)

    async def run(self) -> None:
        """Until cancelled. Leftover processes of an earlier control plane are killed first, and the
        Pods it left in the store are not ready until this runner has started and probed them."""
        stale = processes.kill_strays(self.home)
        if stale:
            log.info("stopped %d leftover pod process(es) of an earlier control plane: %s", len(stale), stale)
        try:
            await self.mark_pods_stopped("ControlPlaneRestarted", "left by an earlier local control plane; "
                                         "not ready until its process is started and probed again")
        except errors.ClusterError as exc:
            log.warning("could not mark earlier Pods not ready: %s", exc)
        kinds = (*WORKLOADS, protocol.NODE, protocol.CONFIGMAP, protocol.SECRET)
        watchers = [asyncio.create_task(self._watch(k), name=f"runner-watch-{k.kind}") for k in kinds]
        try:
            while True:
                self._wake.clear()
                try:
                    await self.sync()
                except errors.ClusterError as exc:
                    log.warning("runner pass failed: %s", exc)
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # races with the event being set, and the loop would then never stop (seen in the tests).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.resync_s):
                        await self._wake.wait()
                await asyncio.sleep(0.05)  # let a burst of events settle into one pass
        finally:
            for task in watchers:
                task.cancel()
            await self.shutdown()

    async def shutdown(self) -> None:
        """Stop every pod process; the store keeps the Pod objects, marked not ready (no dead endpoints)."""
        await asyncio.gather(*(w.stop() for w in self.workers.values()), *self._stopping.values(),
                             return_exceptions=True)
        self.workers.clear()
        self._written.clear()
        try:
            await self.mark_pods_stopped("ControlPlaneStopped", "the local control plane stopped, and its pod "
                                         "processes with it")
        except errors.ClusterError as exc:
            log.warning("could not mark Pods not ready at shutdown: %s", exc)

    async def mark_pods_stopped(self, reason: str, message: str) -> int:
        """Mark every Pod in the store whose process this runner does not run as not ready; returns how many."""
        count = 0
        for obj in (await self.cluster.list(protocol.POD)).items:
            meta = obj["metadata"]
            if (meta.get("namespace") or "default", meta["name"]) in self.workers:
                continue
            status = statuses.build_stopped_status(obj.get("status") or {}, reason, message)
            if statuses.compute_timeless(status) == statuses.compute_timeless(obj.get("status") or {}):
                continue
            with contextlib.suppress(errors.NotFound):
                await self.cluster.apply_status({"apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": meta["name"], "namespace": meta.get("namespace") or "default"}, "status": status},
                    field_manager=KUBELET)
                count += 1
        return count


def _node_ready(node: Mapping[str, Any]) -> bool:
    return _is_ready(node) and not (node.get("metadata") or {}).get("deletionTimestamp")


def asks_for_no_node(pod_spec: Mapping[str, Any]) -> bool:
    """No nodeSelector, no required node affinity, no GPUs: a pod any node of a cluster would take."""
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    gpus = any(((c.get("resources") or {}).get("limits") or {}).get(pods.GPU_RESOURCE)
               for c in pod_spec.get("containers") or [])
    return not pod_spec.get("nodeSelector") and not required and not gpus


def _pick_node(template: Mapping[str, Any], nodes: list[Mapping[str, Any]]) -> str | None:
    """A Ready local Node the pod fits; `THIS_MACHINE` for a pod that asks for no node at all (a
    RAGEngine without `compute`), which a cluster runs on its system nodes: here, this machine."""
    spec = template.get("spec") or {}
    if asks_for_no_node(spec):
        return THIS_MACHINE
    return next((n["metadata"]["name"] for n in nodes if pods.node_fits(spec, n)), None)


def _project(value: Any, shape: Any) -> Any:
    """`value` cut to the keys of `shape` (dicts recursively): what a write changed, not what the store added."""
    if isinstance(value, dict) and isinstance(shape, dict):
        return {k: _project(value.get(k), v) for k, v in shape.items()}
    return value


def _signature(value: Any, shape: Any) -> str:
    return json.dumps(statuses.compute_timeless(_project(value, shape)), sort_keys=True)
