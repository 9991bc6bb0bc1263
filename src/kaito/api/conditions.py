"""Workspace condition types, reasons and states (KAITO v0.3.2 §1.2, v0.12 §1.8), and how to set one.

Controllers, status computation and tests all use these constants, never string literals, so a
typo cannot silently create a new condition type that `kubectl get wk` would not show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kaito.api.meta import (
    CONDITION_MESSAGE_MAX,
    CONDITION_REASON_MAX,
    CONDITION_REASON_PATTERN,
    Condition,
    ConditionStatus,
)


class ConditionType(StrEnum):
    MACHINE_READY = "MachineReady"
    NODE_CLAIM_READY = "NodeClaimReady"
    RESOURCE_READY = "ResourceReady"
    INFERENCE_READY = "InferenceReady"
    JOB_STARTED = "JobStarted"
    WORKSPACE_SUCCEEDED = "WorkspaceSucceeded"
    WORKSPACE_DELETING = "WorkspaceDeleting"
    # v0.12 additions, kept here so v1beta1 can share the list.
    NODES_READY = "NodesReady"
    BENCHMARK_COMPLETED = "BenchmarkCompleted"
    MODEL_MIRROR_READY = "ModelMirrorReady"
    SCALING_DOWN_COMPLETED = "ScalingDownCompleted"


class ConditionReason(StrEnum):
    # KAITO v0.3.2's reasons (api/v1alpha1/workspace_condition_types.go and the controller).
    CREATE_MACHINE_PENDING = "CreateMachinePending"
    CREATE_NODE_CLAIM_PENDING = "CreateNodeClaimPending"
    MACHINE_FAILED_CREATION = "machineFailedCreation"
    NODE_CLAIM_FAILED_CREATION = "nodeClaimFailedCreation"
    CHECK_MACHINE_STATUS_FAILED = "checkMachineStatusFailed"
    CHECK_NODE_CLAIM_STATUS_FAILED = "checkNodeClaimStatusFailed"
    INSTALL_NODE_PLUGINS_SUCCESS = "installNodePluginsSuccess"
    RESOURCE_STATUS_FAILED = "workspaceResourceStatusFailed"
    RESOURCE_STATUS_SUCCESS = "workspaceResourceStatusSuccess"
    INFERENCE_STATUS_FAILED = "WorkspaceInferenceStatusFailed"
    INFERENCE_STATUS_SUCCESS = "WorkspaceInferenceStatusSuccess"
    TUNING_JOB_STATUS_FAILED = "WorkspaceTuningJobStatusFailed"
    TUNING_JOB_STATUS_STARTED = "WorkspaceTuningJobStatusStarted"
    WORKSPACE_FAILED = "workspaceFailed"
    WORKSPACE_SUCCEEDED = "workspaceSucceeded"
    WORKSPACE_PENDING = "workspacePending"
    WORKSPACE_DELETED = "workspaceDeleted"
    # Pending states: v0.3.2 blocked inside a reconcile and never reported them; we requeue, so
    # each wait needs a reason. KAITO v0.12 has these three (reference kaito.md §3.5) ...
    NODE_CLAIM_NOT_READY = "NodeClaimNotReady"
    INFERENCE_STATUS_PENDING = "WorkspaceInferenceStatusPending"
    TUNING_JOB_STATUS_PENDING = "WorkspaceTuningJobStatusPending"
    # KAITO v0.12's reasons (kaito-v0.12.md §1.8): nodes, model mirror, pod failures, benchmark.
    NODE_CLAIMS_READY = "NodeClaimsReady"
    NODES_READY = "NodesReady"
    NODE_NOT_READY = "NodeNotReady"
    NODE_PLUGINS_NOT_READY = "NodePluginsNotReady"
    MODEL_MIRROR_READY = "ModelMirrorReady"
    MODEL_MIRROR_PENDING = "ModelMirrorPending"
    MODEL_MIRROR_NOT_READY = "ModelMirrorNotReady"
    MODEL_MIRROR_CREATE_FAILED = "ModelMirrorCreateFailed"
    IMAGE_PULL_ERROR = "ImagePullError"
    CONTAINER_CRASH_LOOP_BACK_OFF = "ContainerCrashLoopBackOff"
    CONTAINER_OOM_KILLED = "ContainerOOMKilled"
    CONTAINER_START_ERROR = "ContainerStartError"
    POD_EVICTED = "PodEvicted"
    NODE_DISK_PRESSURE = "NodeDiskPressure"
    NODE_MEMORY_PRESSURE = "NodeMemoryPressure"
    UNSCHEDULABLE = "Unschedulable"
    SAS_TOKEN_FETCH_FAILED = "SASTokenFetchFailed"
    BENCHMARK_COMPLETED = "BenchmarkCompleted"
    BENCHMARK_FAILED = "BenchmarkFailed"
    # ... and these are ours alone (no KAITO version has them), named in KAITO's style.
    RESOURCE_STATUS_PENDING = "workspaceResourceStatusPending"
    VALIDATION_FAILED = "workspaceValidationFailed"  # the spec fails validation at reconcile time
    WORKLOAD_REJECTED = "workloadRejected"  # the API server refused the generated workload
    # A gated model with no presetOptions.modelAccessSecret: KAITO admits it silently and the pod
    # fails to download; we warn at admission and say so in a condition while the pod retries.
    MODEL_ACCESS_SECRET_MISSING = "modelAccessSecretMissing"
    # The Workspace runs on vLLM and the (local) cluster has no vLLM installed: no pod is made.
    VLLM_NOT_INSTALLED = "vLLMNotInstalled"


class WorkspaceState(StrEnum):
    """v1beta1 `status.state`: a one-word summary of the conditions (KAITO v0.12 WorkspaceState)."""

    PENDING = "Pending"
    READY = "Ready"  # inference: serving
    NOT_READY = "NotReady"  # inference: was ready, is not now
    RUNNING = "Running"  # tuning: the Job runs
    SUCCEEDED = "Succeeded"  # tuning: the adapter is published
    FAILED = "Failed"


# KAITO's fixed success messages (§1.2), so status text matches what KAITO users see.
MESSAGE_RESOURCE_READY = "workspace resource is ready"
MESSAGE_INFERENCE_READY = "Inference has been deployed successfully"
MESSAGE_JOB_STARTED = "Tuning job has started"
MESSAGE_WORKSPACE_SUCCEEDED = "workspace succeeds"
MESSAGE_WORKSPACE_DELETING = "workspace is being deleted"


TRUNCATED = "... (truncated)"
_NOT_IN_REASON = re.compile(r"[^A-Za-z0-9_,:]")


def compute_condition_reason(reason: str) -> str:
    """`reason` made to fit metav1's pattern: a reason copied from a Job or Deployment condition is
    not checked by anyone, and one that broke the pattern would make the whole status unwritable."""
    if re.match(CONDITION_REASON_PATTERN, reason) and len(reason) <= CONDITION_REASON_MAX:
        return reason
    cleaned = _NOT_IN_REASON.sub("", reason).lstrip("0123456789_,:")[:CONDITION_REASON_MAX].rstrip(",:")
    return cleaned or "Unknown"


def compute_condition_message(message: str) -> str:
    """`message` cut to metav1's 32768 characters (a failure message may carry a long log)."""
    if len(message) <= CONDITION_MESSAGE_MAX:
        return message
    return message[: CONDITION_MESSAGE_MAX - len(TRUNCATED)] + TRUNCATED


def set_condition(
    conditions: list[Condition] | None,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int | None,
    now: datetime | None = None,
) -> list[Condition]:
    """A new list with condition `type` set; the input is not changed.

    As in metav1 `SetStatusCondition`, lastTransitionTime moves only when the status changes, so
    a reconcile that sees the same state writes the same object (and a no-op makes no write).
    """
    when = (now or datetime.now(UTC)).replace(microsecond=0)
    reason, message = compute_condition_reason(reason), compute_condition_message(message)
    previous = find_condition(conditions, type)
    transition = previous.last_transition_time if previous is not None and previous.status == status else when
    updated = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        observed_generation=observed_generation,
        last_transition_time=transition,
    )
    out = [updated if c is previous else c.model_copy() for c in conditions or []]
    if previous is None:
        out.append(updated)
    return out


def find_condition(conditions: list[Condition] | None, type: str) -> Condition | None:
    return next((c for c in conditions or [] if c.type == type), None)


class Outcome(StrEnum):
    """Where a Workspace stands for someone waiting on it (`kaito apply --wait`, scripts)."""

    PENDING = "Pending"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


def compute_outcome(conditions: Iterable[Mapping[str, Any]] | None) -> Outcome:
    """The terminal outcome of a Workspace from its stored `status.conditions` (plain dicts).

    `WorkspaceSucceeded=True` is success. Every failure that waiting cannot fix (a user error, a
    rejected or stalled workload, a failed tuning Job or NodeClaim) sets `WorkspaceSucceeded=False`
    with reason `workspaceFailed`, as KAITO does; any other state is still pending.
    """
    done = next((c for c in conditions or [] if c.get("type") == ConditionType.WORKSPACE_SUCCEEDED), None)
    if done is None:
        return Outcome.PENDING
    if done.get("status") == "True":
        return Outcome.SUCCEEDED
    if done.get("status") == "False" and done.get("reason") == ConditionReason.WORKSPACE_FAILED:
        return Outcome.FAILED
    return Outcome.PENDING
