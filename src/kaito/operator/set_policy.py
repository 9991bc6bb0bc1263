"""How the local cluster scales an InferenceSet: its annotations as a `ScalePolicy`, its scale subresource
as a `ScaleTarget`.

The annotations are keda-kaito-scaler's (`scaledobject.kaito.sh/…`, parsed and checked by
`kaito.api.autoscaling`, which admission runs too); each metric becomes a `MetricRule`, the windows
the policy's seconds, and the maximum is the scaler's (`max-replicas`, or `nodeCountLimit` ÷ the
nodes one replica needs). One difference on purpose: `min-replicas: "0"` scales the set to zero
when idle, and the first request wakes a replica (KEDA's `minReplicaCount: 0`); keda-kaito-scaler
lifts it to 1, which admission warns about.

The target writes `spec.replicas` through the scale subresource (`Cluster.scale`) under its own
field manager, as KEDA's HPA does: an update of that one field, so `kaito apply` of a file that
leaves `replicas` out never undoes it, and the autoscaler never owns the rest of the set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaito.api import autoscaling
from kaito.cluster import protocol
from kaito.cluster.protocol import Cluster
from kaito.manifests import scaledobject
from kaito.operator.serving.policy import MetricRule, ScalePolicy
from kaito.operator.serving.replicas import Scale

AUTOSCALER_FIELD_MANAGER = "kaito-autoscaler"


def wants_zero(annotations: Mapping[str, str]) -> bool:
    """`min-replicas` says 0: the local cluster may scale the set to zero."""
    raw = (annotations.get(autoscaling.MIN_REPLICAS) or "").strip()
    return raw.isdigit() and int(raw) == 0


def build_scale_policy(annotations: Mapping[str, str], *, node_count_limit: int | None = None,
                       target_node_count: int | None = None) -> ScalePolicy | None:
    """The policy the set's annotations ask for; None when autoscaling is off or they are wrong
    (admission names what is wrong; a set stored past it keeps its `spec.replicas`)."""
    parsed, _ = autoscaling.parse_autoscaling(annotations, node_count_limit=node_count_limit)
    if parsed is None:
        return None
    high = scaledobject.compute_max_replicas(parsed, node_count_limit, target_node_count)
    low = 0 if wants_zero(annotations) else parsed.min_replicas
    rules = tuple(MetricRule(name=m.name, kind=m.type, up_threshold=m.up_threshold,  # type: ignore[arg-type]
                             down_threshold=m.down_threshold,
                             cache_window_s=float(m.cache_window_s or autoscaling.DEFAULT_METRIC_CACHE_WINDOW_S))
                  for m in parsed.metrics)
    policy = ScalePolicy(metrics=rules, min_replicas=low, max_replicas=high if high is not None else max(low, 1),
                         evaluation_window_s=float(parsed.evaluation_window_s),
                         scale_up_cooldown_s=float(parsed.scale_up_cooldown_s),
                         scale_down_cooldown_s=float(parsed.scale_down_cooldown_s))
    return None if policy.check() else policy


def read_target_node_count(children: list[Mapping[str, Any]]) -> int | None:
    """The nodes one replica needs, as its children report it (`status.targetNodeCount`)."""
    counts = [int((c.get("status") or {}).get("targetNodeCount") or 0) for c in children]
    return max(counts) if any(counts) else None


class ClusterScaleTarget:
    """An InferenceSet's scale subresource through the `Cluster` protocol (a `ScaleTarget`)."""

    def __init__(self, cluster: Cluster, namespace: str, name: str, *,
                 field_manager: str = AUTOSCALER_FIELD_MANAGER) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.name = name
        self.field_manager = field_manager

    async def read_scale(self) -> Scale:
        obj = await self.cluster.get(protocol.INFERENCESET, self.name, self.namespace)
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return Scale(spec_replicas=int(spec.get("replicas") if spec.get("replicas") is not None else 1),
                     ready_replicas=int(status.get("readyReplicas") or 0))

    async def set_replicas(self, replicas: int) -> None:
        await self.cluster.scale(protocol.INFERENCESET, self.name, self.namespace, replicas=replicas,
                                 field_manager=self.field_manager)
