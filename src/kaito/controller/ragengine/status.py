"""The RAGEngine status a reconcile should leave behind, computed from what it saw (pure).

KAITO's condition types and reasons (kaito-v0.12.md §4.2): NodeClaimReady (only when a NodeClaim is
made), ResourceReady, ServiceReady, RAGEngineSucceeded, RAGEngineDeleting. Where KAITO writes the
service's failure on another type (`RAGEngineServiceReady`) than its success (`ServiceReady`), every
state of the service is written on `ServiceReady`, the printer column (`kaito.api.ragengine`). Ours
beside them: waiting reasons (KAITO blocked inside the reconcile instead) and `InferenceServiceReady`
when `inferenceService.url` names a Workspace — whether that Workspace serves, so a RAGEngine whose
model is not up says so rather than answering chat with errors. As for Workspaces, the status is
rebuilt from the facts each time and written only when it differs from the stored one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from kaito.api import ragengine as rag
from kaito.api.conditions import ConditionReason, set_condition
from kaito.api.meta import Condition
from kaito.controller.status import ResourceFacts, WorkloadFacts

_OWNED_STATUS_FIELDS = ("workerNodes", "conditions")

TargetState = Literal["ready", "not-ready", "not-serving"]


@dataclass(frozen=True, kw_only=True)
class TargetFacts:
    """The Workspace `inferenceService.url` names (only when one of that name exists)."""

    workspace: str
    state: TargetState
    detail: str = ""  # why it is not ready, from its own conditions


@dataclass(frozen=True, kw_only=True)
class StatusFacts:
    generation: int | None
    deleting: bool = False
    # (condition type, reason, message) of a user's mistake: only a spec change fixes it.
    problem: tuple[str, str, str] | None = None
    resource: ResourceFacts | None = None  # None: no node of its own is needed (no GPU compute)
    service: WorkloadFacts | None = None  # the Deployment; None: not created (see `held`)
    held: str | None = None  # why the Deployment is not created yet
    target: TargetFacts | None = None


def _parse_conditions(old: Mapping[str, Any] | None) -> list[Condition]:
    owned = {k: v for k, v in (old or {}).items() if k in _OWNED_STATUS_FIELDS}
    return list(rag.RAGEngineStatus.model_validate(owned).conditions or [])


def compute_status(old: Mapping[str, Any] | None, facts: StatusFacts, now: datetime) -> dict[str, Any]:
    """The full `status` for these facts; transition times kept where a condition did not change."""
    conds = _parse_conditions(old)

    def put(type_: str, status: str, reason: str, message: str) -> None:
        nonlocal conds
        conds = set_condition(conds, type_, status, reason, message, facts.generation, now)  # type: ignore[arg-type]

    workers: list[str] | None = list((old or {}).get("workerNodes") or []) or None
    if facts.deleting:
        put(rag.CONDITION_DELETING, "True", rag.REASON_DELETED, rag.MESSAGE_DELETING)
        return _assemble(old, workers, conds)
    if facts.problem is not None:
        ctype, reason, message = facts.problem
        put(ctype, "False", reason, message)
        if ctype != rag.CONDITION_SUCCEEDED:
            put(rag.CONDITION_SUCCEEDED, "False", rag.REASON_FAILED, message)
        return _assemble(old, workers, conds)

    res = facts.resource
    if res is not None:
        workers = sorted(res.selected) or None
        if not res.ready:
            _put_resource_pending(put, res)
            return _assemble(old, workers, conds)
        if res.provisioning:
            put(rag.CONDITION_NODE_CLAIM_READY, "True", ConditionReason.INSTALL_NODE_PLUGINS_SUCCESS,
                "nodeClaim plugins have been installed successfully")
    put(rag.CONDITION_RESOURCE_READY, "True", rag.REASON_RESOURCE_SUCCESS, rag.MESSAGE_RESOURCE_READY)

    waiting_on = _put_target(put, facts.target)
    service_done = _put_service(put, facts.service, facts.held)
    if service_done is not None:  # failed: the message says why
        put(rag.CONDITION_SUCCEEDED, "False", rag.REASON_FAILED, service_done)
    elif facts.target is not None and facts.target.state == "not-serving":
        put(rag.CONDITION_SUCCEEDED, "False", rag.REASON_FAILED, waiting_on or "")
    elif facts.service is not None and facts.service.ready and waiting_on is None:
        put(rag.CONDITION_SUCCEEDED, "True", rag.REASON_SUCCEEDED, rag.MESSAGE_SUCCEEDED)
    else:
        put(rag.CONDITION_SUCCEEDED, "False", rag.REASON_PENDING,
            waiting_on or facts.held or "ragengine is waiting for its service to be ready")
    return _assemble(old, workers, conds)


def _put_resource_pending(put, res: ResourceFacts) -> None:
    if res.claim_failures:
        message = "; ".join(res.claim_failures)
        put(rag.CONDITION_NODE_CLAIM_READY, "False", ConditionReason.CHECK_NODE_CLAIM_STATUS_FAILED, message)
        put(rag.CONDITION_RESOURCE_READY, "False", rag.REASON_RESOURCE_FAILED, message)
        put(rag.CONDITION_SUCCEEDED, "False", rag.REASON_FAILED, message)
        return
    if res.provisioning and res.claims_pending:
        put(rag.CONDITION_NODE_CLAIM_READY, "Unknown", ConditionReason.CREATE_NODE_CLAIM_PENDING,
            f"creating {res.claims_pending} nodeClaims")
    elif res.provisioning:
        put(rag.CONDITION_NODE_CLAIM_READY, "False", ConditionReason.NODE_CLAIM_NOT_READY, "waiting for nodeClaim nodes")
    message = "waiting for a ready node for the RAG service"
    put(rag.CONDITION_RESOURCE_READY, "False", rag.REASON_RESOURCE_PENDING, message)
    put(rag.CONDITION_SUCCEEDED, "False", rag.REASON_PENDING, message)


def _put_target(put, target: TargetFacts | None) -> str | None:
    """InferenceServiceReady; returns why the engine still waits on its Workspace (None: it does not)."""
    if target is None:
        return None
    if target.state == "ready":
        put(rag.CONDITION_INFERENCE_SERVICE_READY, "True", rag.REASON_WORKSPACE_READY,
            f"Workspace {target.workspace} is serving")
        return None
    if target.state == "not-serving":
        message = (f"inferenceService.url names Workspace {target.workspace}, a tuning Workspace: it serves no "
                   "model to answer with")
        put(rag.CONDITION_INFERENCE_SERVICE_READY, "False", rag.REASON_WORKSPACE_NOT_SERVING, message)
        return message
    message = f"Workspace {target.workspace} (inferenceService.url) is not ready"
    message += f": {target.detail}" if target.detail else ""
    message += "; /retrieve and indexing work, chat answers once it serves"
    put(rag.CONDITION_INFERENCE_SERVICE_READY, "False", rag.REASON_WORKSPACE_NOT_READY, message)
    return message


def _put_service(put, service: WorkloadFacts | None, held: str | None) -> str | None:
    """ServiceReady from the Deployment; returns the failure message when its rollout stalled."""
    if service is not None and service.ready:
        put(rag.CONDITION_SERVICE_READY, "True", rag.REASON_SERVICE_SUCCESS, rag.MESSAGE_SERVICE_READY)
        return None
    if service is not None and service.failed and service.stalled is not None:
        reason, message = service.stalled
        put(rag.CONDITION_SERVICE_READY, "False", reason, message)
        return message
    if service is None or not service.exists:
        message = held or "RAG service is being created"
    elif not service.current or not service.rolled_out:
        message = "RAG service is being rolled out"
    else:
        message = f"{service.ready_replicas} of {service.replicas} RAG service replicas are ready"
    put(rag.CONDITION_SERVICE_READY, "False", rag.REASON_SERVICE_PENDING, message)
    return None


def _assemble(old: Mapping[str, Any] | None, workers: list[str] | None, conds: list[Condition]) -> dict[str, Any]:
    status = rag.RAGEngineStatus(worker_nodes=workers, conditions=conds or None).to_dict()
    for key, value in (old or {}).items():  # fields another writer owns stay as they were
        if key not in _OWNED_STATUS_FIELDS:
            status.setdefault(key, value)
    return status


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` would change the stored status (compared by meaning, not spelling)."""
    return _normalise(old or {}) != _normalise(new)


def _normalise(status: Mapping[str, Any]) -> Any:
    owned = rag.RAGEngineStatus.model_validate({k: v for k, v in status.items() if k in _OWNED_STATUS_FIELDS})
    return owned.to_dict() | {k: v for k, v in status.items() if k not in _OWNED_STATUS_FIELDS}


def compute_target_facts(name: str, workspace: Mapping[str, Any]) -> TargetFacts:
    """Whether a stored Workspace serves: `WorkspaceSucceeded=True` on an inference Workspace."""
    if workspace.get("tuning") is not None:
        return TargetFacts(workspace=name, state="not-serving")
    conditions = {c.get("type"): c for c in (workspace.get("status") or {}).get("conditions") or []}
    done = conditions.get("WorkspaceSucceeded") or {}
    if done.get("status") == "True" and not (workspace.get("metadata") or {}).get("deletionTimestamp"):
        return TargetFacts(workspace=name, state="ready")
    why = conditions.get("InferenceReady") or conditions.get("ResourceReady") or done
    detail = f"{why.get('type')}={why.get('status')} {why.get('reason')}: {why.get('message')}" if why else "no status yet"
    if (workspace.get("metadata") or {}).get("deletionTimestamp"):
        detail = "it is being deleted"
    return TargetFacts(workspace=name, state="not-ready", detail=detail)
