"""Where a Workspace's pods may run: node affinity from `matchLabels`, GPU tolerations, GPU requests.

Shared by preset workloads, template workloads and tuning Jobs so they land on the same nodes
that the NodeClaims (tainted `sku=gpu:NoSchedule`) or the user's labelled BYO nodes provide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kaito.api.hub import Workspace
from kaito.manifests import ownership

GPU_RESOURCE = "nvidia.com/gpu"
HOSTNAME_LABEL = "kubernetes.io/hostname"

GPU_TOLERATIONS: tuple[dict[str, str], ...] = (
    {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
    {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
)


def build_node_affinity(ws: Workspace, node_names: Sequence[str] = ()) -> dict[str, Any] | None:
    """Required node affinity: every `matchLabels` pair as `In [value]`, plus the chosen nodes.

    Pinning to the chosen nodes (when the controller passes them) keeps pods off a node of the same
    labels that another Workspace selected; a render without nodes omits that term.
    """
    return build_label_affinity(ownership.placement_labels(ws), node_names)


def build_label_affinity(match_labels: Mapping[str, str], node_names: Sequence[str] = ()) -> dict[str, Any] | None:
    """`build_node_affinity` from the (already sanitised) `matchLabels` themselves."""
    expressions = [{"key": key, "operator": "In", "values": [value]} for key, value in sorted(match_labels.items())]
    if node_names:
        expressions.append({"key": HOSTNAME_LABEL, "operator": "In", "values": sorted(set(node_names))})
    if not expressions:
        return None
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
        }
    }


def build_tolerations() -> list[dict[str, str]]:
    return [dict(t) for t in GPU_TOLERATIONS]


def build_gpu_resources(gpu_count: int) -> dict[str, Any]:
    """Requests = limits of all the node's GPUs, as KAITO does; nothing for a CPU-only node."""
    if gpu_count <= 0:
        return {}
    quantity = {GPU_RESOURCE: str(gpu_count)}
    return {"requests": dict(quantity), "limits": dict(quantity)}
