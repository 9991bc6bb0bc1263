"""The Workspace status a reconcile should leave behind, computed from what it saw (pure).

KAITO's conditions (§1.2) are kept type for type and reason for reason, so `kubectl get wk` and
scripts that wait on `WorkspaceSucceeded` behave the same. Two differences, on purpose: waiting is
not an error (KAITO blocked, then failed; here a node or pod that is still coming up gives a
pending reason and the reconcile requeues), and the status is rebuilt from the observed world
every time, so it is the same dict whenever the world is the same: the reconciler compares it
with the stored one and writes only when they differ.

Beside the conditions, KAITO v0.12's `state` (a one-word summary of them) and `targetNodeCount`
(written once, when it is still 0, then kept as v0.12 keeps it) are written: the status is always
written in the storage version (v1beta1), which holds them whichever version the user wrote in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from kaito.api import labels
from kaito.api.conditions import (
    MESSAGE_INFERENCE_READY,
    MESSAGE_JOB_STARTED,
    MESSAGE_RESOURCE_READY,
    MESSAGE_WORKSPACE_DELETING,
    MESSAGE_WORKSPACE_SUCCEEDED,
    ConditionReason,
    ConditionType,
    WorkspaceState,
    find_condition,
    set_condition,
)
from kaito.api.hub import WorkspaceStatus
from kaito.api.meta import Condition

# Pending reasons: KAITO v0.3.2 had none (it blocked instead); `kaito.api.conditions` keeps them,
# with v0.12's names where it has them. Short local names for the status rules below.
REASON_RESOURCE_PENDING = ConditionReason.RESOURCE_STATUS_PENDING
REASON_INFERENCE_PENDING = ConditionReason.INFERENCE_STATUS_PENDING
REASON_TUNING_JOB_PENDING = ConditionReason.TUNING_JOB_STATUS_PENDING
REASON_NODE_CLAIM_NOT_READY = ConditionReason.NODE_CLAIM_NOT_READY
MESSAGE_NODE_CLAIM_READY = "nodeClaim plugins have been installed successfully"

_OWNED_STATUS_FIELDS = ("workerNodes", "conditions", "state", "targetNodeCount")

# Workload conditions that waiting will not fix: a Deployment whose rollout stalled
# (`Progressing=False`: ProgressDeadlineExceeded, or the local runner's ImageNeedsCluster, which it
# also sets on StatefulSets) or that cannot create its pods (`ReplicaFailure=True`). KAITO v0.3.2
# failed the Workspace on `Progressing=False` as well; the reason and message are passed on as they
# are, so the Workspace says why.
STALLED_WORKLOAD_CONDITIONS = (("Progressing", "False"), ("ReplicaFailure", "True"))
# Reasons Kubernetes gives a Job whose pods ran and failed: KAITO's tuningJobStatusFailed covers
# them. Any other reason on `Failed=True` (ImageNeedsCluster) says why the Job could not run at all.
JOB_RAN_AND_FAILED_REASONS = frozenset(
    {"", "BackoffLimitExceeded", "DeadlineExceeded", "PodFailurePolicy", "MaxFailedIndexesExceeded", "FailedIndexes"}
)

WorkloadKind = Literal["inference", "tuning"]


@dataclass(frozen=True, kw_only=True)
class ResourceFacts:
    """The node side: what was needed, chosen, and is still coming."""

    needed: int
    selected: tuple[str, ...]
    provisioning: bool  # NodeClaims are ours to make (NodeClaimReady is reported)
    claims_pending: int = 0  # created or about to be, node not usable yet
    claim_failures: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return len(self.selected) >= self.needed


@dataclass(frozen=True, kw_only=True)
class WorkloadFacts:
    """An inference Deployment/StatefulSet: exists, current revision, ready replicas."""

    exists: bool
    current: bool
    replicas: int = 0
    ready_replicas: int = 0
    rolled_out: bool = False  # the workload controller has acted on the latest spec
    stalled: tuple[str, str] | None = None  # (reason, message) of a STALLED_WORKLOAD_CONDITIONS entry

    @property
    def ready(self) -> bool:
        return self.exists and self.current and self.rolled_out and self.ready_replicas >= self.replicas

    @property
    def failed(self) -> bool:
        """Stalled on the spec we want: an older revision's or generation's stall says nothing."""
        return self.stalled is not None and self.exists and self.current and self.rolled_out and not self.ready


@dataclass(frozen=True, kw_only=True)
class JobFacts:
    """A tuning Job: its pods and outcome."""

    exists: bool
    current: bool
    active: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: bool = False
    failure_message: str = ""
    failure_reason: str = ""


@dataclass(frozen=True, kw_only=True)
class StatusFacts:
    kind: WorkloadKind
    generation: int | None
    deleting: bool = False
    resource: ResourceFacts | None = None
    workload: WorkloadFacts | None = None
    job: JobFacts | None = None
    problem: tuple[str, str, str] | None = None  # (condition type, reason, message) of a user error
    target_node_count: int | None = None  # the node estimator's answer (written once, when still 0)
    # Why the model pods may fail to download (a gated model without modelAccessSecret): while
    # inference is not ready, InferenceReady says so (reason modelAccessSecretMissing).
    access_warning: str | None = None


def compute_workload_facts(obj: Mapping[str, Any] | None, current_revision: str | None) -> WorkloadFacts:
    """Readiness of a Deployment or StatefulSet as its controller reports it."""
    if obj is None:
        return WorkloadFacts(exists=False, current=False)
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    current = current_revision is None or annotations.get(labels.ANNOTATION_REVISION) == current_revision
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    replicas = int(spec.get("replicas", 1) or 0)
    generation = meta.get("generation")
    observed = st.get("observedGeneration")
    rolled_out = generation is None or (observed is not None and int(observed) >= int(generation))
    updated = st.get("updatedReplicas")
    if updated is not None and int(updated) < replicas:
        rolled_out = False
    stalled = next(
        (
            (str(c.get("reason") or c.get("type")), str(c.get("message") or c.get("reason") or c.get("type")))
            for c in st.get("conditions") or []
            if (c.get("type"), c.get("status")) in STALLED_WORKLOAD_CONDITIONS
        ),
        None,
    )
    return WorkloadFacts(
        exists=True,
        current=current,
        replicas=replicas,
        ready_replicas=int(st.get("readyReplicas") or 0),
        rolled_out=rolled_out,
        stalled=stalled,
    )


def compute_job_facts(obj: Mapping[str, Any] | None, current_revision: str | None) -> JobFacts:
    """Progress of a tuning Job; `Failed=True` (backoff limit reached) is the terminal failure."""
    if obj is None:
        return JobFacts(exists=False, current=False)
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    current = current_revision is None or annotations.get(labels.ANNOTATION_REVISION) == current_revision
    st = obj.get("status") or {}
    failed, message, reason = False, "", ""
    for cond in st.get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            failed, message, reason = True, cond.get("message") or cond.get("reason") or "", cond.get("reason") or ""
    return JobFacts(
        exists=True,
        current=current,
        active=int(st.get("active") or 0),
        ready=int(st.get("ready") or 0),
        succeeded=int(st.get("succeeded") or 0),
        failed=failed,
        failure_message=message,
        failure_reason=reason,
    )


def _parse_conditions(old: Mapping[str, Any] | None) -> list[Condition]:
    if not old:
        return []
    owned = {k: v for k, v in old.items() if k in _OWNED_STATUS_FIELDS}
    return list(WorkspaceStatus.model_validate(owned).conditions or [])


def compute_status(old: Mapping[str, Any] | None, facts: StatusFacts, now: datetime) -> dict[str, Any]:
    """The full `status` for these facts; transition times kept where a status did not change."""
    conds = _parse_conditions(old)
    gen = facts.generation

    def put(type_: str, status: str, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, type_, status, reason, message, gen, now)  # type: ignore[arg-type]

    worker_nodes: list[str] | None = list((old or {}).get("workerNodes") or []) or None
    if facts.deleting:
        put(
            ConditionType.WORKSPACE_DELETING,
            "True",
            ConditionReason.WORKSPACE_DELETED,
            MESSAGE_WORKSPACE_DELETING,
        )
        return _assemble(old, worker_nodes, conds, facts)

    if facts.problem is not None:
        ctype, reason, message = facts.problem
        put(ctype, "False", reason, message)
        put(ConditionType.WORKSPACE_SUCCEEDED, "False", ConditionReason.WORKSPACE_FAILED, message)
        return _assemble(old, worker_nodes, conds, facts)

    res = facts.resource
    if res is not None:
        worker_nodes = sorted(res.selected) or None
        if not res.ready:
            _put_resource_pending(put, res)
            return _assemble(old, worker_nodes, conds, facts)
        if res.provisioning:
            put(
                ConditionType.NODE_CLAIM_READY,
                "True",
                ConditionReason.INSTALL_NODE_PLUGINS_SUCCESS,
                MESSAGE_NODE_CLAIM_READY,
            )
        put(
            ConditionType.RESOURCE_READY,
            "True",
            ConditionReason.RESOURCE_STATUS_SUCCESS,
            MESSAGE_RESOURCE_READY,
        )

    if facts.kind == "inference":
        _put_inference(put, facts.workload or WorkloadFacts(exists=False, current=False), facts.access_warning)
    else:
        _put_tuning(put, facts.job or JobFacts(exists=False, current=False))
    return _assemble(old, worker_nodes, conds, facts)


def _put_resource_pending(put, res: ResourceFacts) -> None:
    missing = res.needed - len(res.selected)
    if res.claim_failures:
        message = "; ".join(res.claim_failures)
        put(ConditionType.NODE_CLAIM_READY, "False", ConditionReason.CHECK_NODE_CLAIM_STATUS_FAILED, message)
        put(ConditionType.RESOURCE_READY, "False", ConditionReason.RESOURCE_STATUS_FAILED, message)
        put(ConditionType.WORKSPACE_SUCCEEDED, "False", ConditionReason.WORKSPACE_FAILED, message)
        return
    if res.provisioning and res.claims_pending:
        put(
            ConditionType.NODE_CLAIM_READY,
            "Unknown",
            ConditionReason.CREATE_NODE_CLAIM_PENDING,
            f"creating {res.claims_pending} nodeClaims",
        )
    elif res.provisioning:
        put(
            ConditionType.NODE_CLAIM_READY,
            "False",
            REASON_NODE_CLAIM_NOT_READY,
            "waiting for nodeClaim nodes",
        )
    message = f"waiting for {missing} of {res.needed} nodes to be ready"
    put(ConditionType.RESOURCE_READY, "False", REASON_RESOURCE_PENDING, message)
    put(ConditionType.WORKSPACE_SUCCEEDED, "False", ConditionReason.WORKSPACE_PENDING, message)


def _put_inference(put, wl: WorkloadFacts, access_warning: str | None = None) -> None:
    if wl.ready:
        put(
            ConditionType.INFERENCE_READY,
            "True",
            ConditionReason.INFERENCE_STATUS_SUCCESS,
            MESSAGE_INFERENCE_READY,
        )
        put(
            ConditionType.WORKSPACE_SUCCEEDED,
            "True",
            ConditionReason.WORKSPACE_SUCCEEDED,
            MESSAGE_WORKSPACE_SUCCEEDED,
        )
        return
    if wl.failed and wl.stalled is not None:
        reason, message = wl.stalled
        put(ConditionType.INFERENCE_READY, "False", reason, message)
        put(ConditionType.WORKSPACE_SUCCEEDED, "False", ConditionReason.WORKSPACE_FAILED, message)
        return
    if not wl.exists or not wl.current or not wl.rolled_out:
        message = "inference workload is being rolled out"
    else:
        message = f"{wl.ready_replicas} of {wl.replicas} inference replicas are ready"
    if access_warning:
        put(ConditionType.INFERENCE_READY, "False", ConditionReason.MODEL_ACCESS_SECRET_MISSING,
            f"{message}; {access_warning}")
    else:
        put(ConditionType.INFERENCE_READY, "False", REASON_INFERENCE_PENDING, message)
    put(
        ConditionType.WORKSPACE_SUCCEEDED,
        "False",
        ConditionReason.WORKSPACE_PENDING,
        "workspace is waiting for inference workload readiness",
    )


def _put_tuning(put, job: JobFacts) -> None:
    if job.exists and job.current and job.failed:
        message = f"tuning job failed: {job.failure_message}" if job.failure_message else "tuning job failed"
        reason = (
            ConditionReason.TUNING_JOB_STATUS_FAILED
            if job.failure_reason in JOB_RAN_AND_FAILED_REASONS
            else job.failure_reason
        )
        put(ConditionType.JOB_STARTED, "False", reason, message)
        put(ConditionType.WORKSPACE_SUCCEEDED, "False", ConditionReason.WORKSPACE_FAILED, message)
        return
    started = job.exists and job.current and (job.active or job.ready or job.succeeded)
    if started:
        put(ConditionType.JOB_STARTED, "True", ConditionReason.TUNING_JOB_STATUS_STARTED, MESSAGE_JOB_STARTED)
    else:
        put(ConditionType.JOB_STARTED, "False", REASON_TUNING_JOB_PENDING, "tuning job has not started")
    if job.exists and job.current and job.succeeded > 0:
        put(
            ConditionType.WORKSPACE_SUCCEEDED,
            "True",
            ConditionReason.WORKSPACE_SUCCEEDED,
            MESSAGE_WORKSPACE_SUCCEEDED,
        )
        return
    active = job.active if job.current else 0
    ready = job.ready if job.current else 0
    put(
        ConditionType.WORKSPACE_SUCCEEDED,
        "False",
        ConditionReason.WORKSPACE_PENDING,
        f"workspace has not completed, tuning job has {active} active pod, {ready} ready pod",
    )


def compute_state(kind: WorkloadKind, conds: list[Condition], old_state: str | None) -> str:
    """v1beta1 `status.state` from the conditions: inference Pending → Ready (→ NotReady when it stops
    being ready), tuning Pending → Running → Succeeded; a Workspace that failed is Failed."""
    done = find_condition(conds, ConditionType.WORKSPACE_SUCCEEDED)
    if done is not None and done.status == "True":
        return WorkspaceState.READY if kind == "inference" else WorkspaceState.SUCCEEDED
    if done is not None and done.reason == ConditionReason.WORKSPACE_FAILED:
        return WorkspaceState.FAILED
    if kind == "inference":
        was_ready = old_state in (WorkspaceState.READY, WorkspaceState.NOT_READY)
        return WorkspaceState.NOT_READY if was_ready else WorkspaceState.PENDING
    started = find_condition(conds, ConditionType.JOB_STARTED)
    return WorkspaceState.RUNNING if started is not None and started.status == "True" else WorkspaceState.PENDING


def _assemble(
    old: Mapping[str, Any] | None, worker_nodes: list[str] | None, conds: list[Condition], facts: StatusFacts
) -> dict[str, Any]:
    old_state = (old or {}).get("state")
    state = old_state if facts.deleting and old_state else compute_state(facts.kind, conds, old_state)
    target = (old or {}).get("targetNodeCount")
    if not target:  # KAITO v0.12 writes it once, when it is still 0, and keeps it
        target = facts.target_node_count
    status = WorkspaceStatus(worker_nodes=worker_nodes, conditions=conds or None, state=state or None,
                             target_node_count=target or None).to_dict()
    # Keep fields this controller does not own (a newer API version's, another tool's) as they were.
    for key, value in (old or {}).items():
        if key not in _OWNED_STATUS_FIELDS:
            status.setdefault(key, value)
    return status


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` would change the stored status (compared as JSON values)."""
    return _normalise(old or {}) != _normalise(new)


def _normalise(status: Mapping[str, Any]) -> Any:
    # Parsing makes "2026-01-01T00:00:00Z" and "...+00:00" the same time: only meaning is compared.
    owned = WorkspaceStatus.model_validate({k: v for k, v in status.items() if k in _OWNED_STATUS_FIELDS})
    return owned.to_dict() | {k: v for k, v in status.items() if k not in _OWNED_STATUS_FIELDS}
