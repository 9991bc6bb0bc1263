"""The KEDA `ScaledObject` for an autoscaled InferenceSet, as keda-kaito-scaler v0.6 makes it (§3.5).

On clusters keda-kaito-scaler itself creates this object (it also runs the gRPC external scaler
that every trigger points at, which averages each metric over the children's `/metrics`); kaito's
chart does not, so the two never fight over it (README: "Autoscaling InferenceSets"). This builder
renders the same object from the same annotations: so that a user (and the golden files, which pin
our reading of the annotations to the scaler's) can see exactly what the scaler will make, and as
the policy the local cluster's autoscaler (a later phase) follows: one replica up when every metric
is above its upthreshold and all desired replicas are ready, one down when every metric is below
its downthreshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kaito.api import autoscaling, inferenceset
from kaito.manifests import ownership

API_VERSION = "keda.sh/v1alpha1"
SCALER_NAME = "keda-kaito-scaler"  # the `managed-by` value and the scaler's name
# keda-kaito-scaler's defaults: its Service, working namespace and gRPC port.
DEFAULT_SCALER_SERVICE = "keda-kaito-scaler-svc"
DEFAULT_SCALER_NAMESPACE = "kaito-workspace"
DEFAULT_SCALER_GRPC_PORT = 10450
TRIGGER_AUTHENTICATION = "keda-kaito-scaler-creds"  # a ClusterTriggerAuthentication (mTLS)
GATE_TRIGGER = "readiness_gate"
POLLING_INTERVAL_S = 15
TOLERANCE = "100m"  # 0.1, as a Kubernetes quantity prints it
UP, DOWN, HOLD = "2.0", "0.5", "1.0"


@dataclass(frozen=True, kw_only=True)
class ScaledObjectInputs:
    inference_set: inferenceset.InferenceSet
    policy: autoscaling.AutoscalingPolicy
    max_replicas: int  # `compute_max_replicas`: the annotation, or nodeCountLimit ÷ a child's nodes
    scaler_service: str = DEFAULT_SCALER_SERVICE
    scaler_namespace: str = DEFAULT_SCALER_NAMESPACE
    scaler_grpc_port: int = DEFAULT_SCALER_GRPC_PORT


def compute_max_replicas(policy: autoscaling.AutoscalingPolicy, node_count_limit: int | None,
                         target_node_count: int | None) -> int | None:
    """keda-kaito-scaler's maximum: with `spec.nodeCountLimit`, the limit ÷ one child's
    `status.targetNodeCount` (at least 1; None until a child reports it), else the annotation."""
    if node_count_limit:
        return max(1, node_count_limit // target_node_count) if target_node_count else None
    return policy.max_replicas if policy.max_replicas is not None else 1


def build_formula(policy: autoscaling.AutoscalingPolicy) -> str:
    """`(gate == 1 && m > up …) ? 2.0 : ((m < down …) ? 0.5 : 1.0)`: the HPA sees double, half or
    the same as the target of 1, and its behaviour below moves one replica at a time."""
    up = " && ".join([f"{GATE_TRIGGER} == 1",
                      *(f"{m.variable} > {autoscaling.format_number(m.up_threshold)}" for m in policy.metrics)])
    down = " && ".join(f"{m.variable} < {autoscaling.format_number(m.down_threshold)}" for m in policy.metrics)
    return f"({up}) ? {UP} : (({down}) ? {DOWN} : {HOLD})"


def _trigger(inputs: ScaledObjectInputs, name: str, metadata: dict[str, str]) -> dict[str, Any]:
    obj = inputs.inference_set
    address = f"{inputs.scaler_service}.{inputs.scaler_namespace}.svc.cluster.local:{inputs.scaler_grpc_port}"
    common = {"inferenceSetName": obj.name, "inferenceSetNamespace": obj.namespace, "scalerAddress": address}
    return {
        "type": "external",
        "name": name,
        "metadata": dict(sorted({**common, **metadata}.items())),  # Go writes map keys sorted
        "authenticationRef": {"name": TRIGGER_AUTHENTICATION, "kind": "ClusterTriggerAuthentication"},
        "metricType": "Value",
    }


def build_triggers(inputs: ScaledObjectInputs) -> list[dict[str, Any]]:
    """One external trigger per metric, then the readiness gate (1 when every desired child is ready)."""
    triggers = []
    for metric in inputs.policy.metrics:
        metadata = {"metricName": metric.name, "metricSource": metric.source, "aggregation": metric.aggregation}
        if metric.cache_window_s is not None:
            metadata["metricCacheWindow"] = str(metric.cache_window_s)
        triggers.append(_trigger(inputs, metric.variable, metadata))
    triggers.append(_trigger(inputs, GATE_TRIGGER, {"metricName": GATE_TRIGGER, "aggregation": "gate"}))
    return triggers


def _rules(window_s: int, period_s: int) -> dict[str, Any]:
    return {"stabilizationWindowSeconds": window_s, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": period_s}], "tolerance": TOLERANCE}


def build_scaled_object(inputs: ScaledObjectInputs) -> dict[str, Any]:
    obj, policy = inputs.inference_set, inputs.policy
    owner = ownership.PLACEHOLDER_UID if not obj.metadata.uid else obj.metadata.uid
    return {
        "apiVersion": API_VERSION,
        "kind": "ScaledObject",
        "metadata": {
            "name": obj.name,
            "namespace": obj.namespace,
            "annotations": {autoscaling.MANAGED_BY: SCALER_NAME},
            "ownerReferences": [{"apiVersion": inferenceset.STORAGE_API_VERSION, "kind": inferenceset.KIND,
                                 "name": obj.name, "uid": owner, "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": {
                    "scaleUp": _rules(policy.evaluation_window_s, policy.scale_up_cooldown_s),
                    "scaleDown": _rules(policy.scale_down_cooldown_s, policy.scale_down_cooldown_s),
                }},
                "scalingModifiers": {"formula": build_formula(policy), "target": "1", "metricType": "Value"},
            },
            "scaleTargetRef": {"name": obj.name, "apiVersion": inferenceset.STORAGE_API_VERSION,
                               "kind": inferenceset.KIND},
            "pollingInterval": POLLING_INTERVAL_S,
            "minReplicaCount": policy.min_replicas,
            "maxReplicaCount": inputs.max_replicas,
            "triggers": build_triggers(inputs),
        },
    }
