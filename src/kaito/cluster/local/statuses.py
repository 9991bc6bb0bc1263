"""The statuses the local runner writes: Pods (as a kubelet would), Deployments, StatefulSets, Jobs.

Pure functions of the pod workers' states, kept apart from the runner's scheduling and write loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaito.cluster.events import now_rfc3339
from kaito.cluster.local import pods
from kaito.cluster.local.podworker import PodWorker


def compute_timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: compute_timeless(v) for k, v in value.items() if not k.endswith("Time")}
    if isinstance(value, list):
        return [compute_timeless(v) for v in value]
    return value


def build_condition(type_: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message,
            "lastTransitionTime": now_rfc3339()}


def _container_state(worker: PodWorker) -> dict[str, Any]:
    st = worker.state
    if st.phase == "Running" and st.pid is not None:
        return {"running": {"startedAt": st.started_at}}
    if st.phase in ("Succeeded", "Failed") or (st.exit_code is not None and st.reason not in _WAITING):
        return {"terminated": {"exitCode": st.exit_code if st.exit_code is not None else 1,
                               "reason": st.reason, "message": st.message}}
    return {"waiting": {"reason": st.reason, "message": st.message}}


_WAITING = ("CrashLoopBackOff", "PodInitializing", "CreateContainerConfigError", "ImageNeedsCluster", "")


def build_pod_status(worker: PodWorker) -> dict[str, Any]:
    st = worker.state
    scheduled = worker.node is not None
    unready = ("ReadinessProbeError", st.probe_error) if st.probe_error and not st.ready else ("", "")
    state = _container_state(worker)
    containers = []
    for c in (worker.template.get("spec") or {}).get("containers") or []:
        name = c.get("name")
        entry = {"name": name, "image": c.get("image"), "ready": bool(st.container_ready.get(name)) and st.ready,
                 "started": bool(st.container_started.get(name)) and st.pid is not None,
                 "restartCount": st.restarts, "state": state}
        if st.last_state is not None and st.restarts:
            entry["lastState"] = st.last_state
        containers.append(entry)
    return {
        "phase": st.phase, "reason": st.reason, "message": st.message,
        "podIP": pods.LOCAL_HOST, "hostIP": pods.LOCAL_HOST,
        "conditions": [build_condition("PodScheduled", scheduled, "" if scheduled else "Unschedulable"),
                       build_condition("Initialized", st.started),
                       build_condition("ContainersReady", st.ready, *unready),
                       build_condition("Ready", st.ready, *unready)],
        "containerStatuses": containers,
        **({"localPid": st.pid} if st.pid else {}),
    }


def build_workload_status(mine: list[PodWorker], obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    replicas = int(spec.get("replicas", 1) or 0)
    digest = pods.compute_template_hash(spec.get("template") or {})
    current = [w for w in mine if w.template_hash == digest]
    ready = sum(w.state.ready for w in current)
    problem = next((w.state for w in current if w.state.reason in ("ImageNeedsCluster", "Unschedulable",
                                                                    "CreateContainerConfigError")), None)
    conditions = [build_condition("Available", ready >= replicas, "MinimumReplicasAvailable" if ready >= replicas
                        else "MinimumReplicasUnavailable")]
    if problem is not None:
        conditions.append(build_condition("Progressing", False, problem.reason, problem.message))
    else:
        conditions.append(build_condition("Progressing", True, "NewReplicaSetAvailable" if ready >= replicas
                                else "ReplicaSetUpdated"))
    return {"observedGeneration": (obj.get("metadata") or {}).get("generation"), "replicas": len(mine),
            "updatedReplicas": len(current), "readyReplicas": ready, "availableReplicas": ready,
            **({"currentReplicas": len(current)} if obj.get("kind") == "StatefulSet" else {}),
            "conditions": conditions}


def job_finished(obj: Mapping[str, Any]) -> bool:
    """Whether a Job's status says it ran to its end (Complete or Failed): as on Kubernetes, no pod
    of it runs again, whatever happens to the control plane afterwards."""
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def build_job_status(mine: list[PodWorker], obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    digest = pods.compute_template_hash(spec.get("template") or {})
    worker = next((w for w in mine if w.template_hash == digest), None)
    if worker is None:
        return {"active": 0}
    st = worker.state
    status: dict[str, Any] = {"active": int(st.phase in ("Pending", "Running") and st.reason != "ImageNeedsCluster"),
                              "ready": int(st.phase == "Running"), "succeeded": int(st.phase == "Succeeded"),
                              "failed": st.failures + (1 if st.reason == "ImageNeedsCluster" else 0)}
    if st.phase == "Succeeded":
        status["conditions"] = [build_condition("Complete", True)]
    elif st.phase == "Failed":
        reason = "ImageNeedsCluster" if st.reason == "ImageNeedsCluster" else "BackoffLimitExceeded"
        message = st.message or f"Job has reached the specified backoff limit (last exit code {st.exit_code})"
        status["conditions"] = [build_condition("Failed", True, reason, message)]
    return status


def build_stopped_status(status: Mapping[str, Any], reason: str, message: str) -> dict[str, Any]:
    """A Pod's status once its process is gone with the control plane: not ready, no pid, phase Unknown
    if it was running (what Kubernetes shows for a pod on a lost node)."""
    if status.get("phase") in ("Succeeded", "Failed"):
        return dict(status)
    out = {k: v for k, v in status.items() if k != "localPid"}
    if out.get("phase") == "Running":
        out.update(phase="Unknown", reason=reason, message=message)
    out["conditions"] = [
        build_condition(c.get("type", ""), False, reason, message) if c.get("type") in ("Ready", "ContainersReady") else c
        for c in status.get("conditions") or []]
    out["containerStatuses"] = [{**c, "ready": False} for c in status.get("containerStatuses") or []]
    return out
