"""Karpenter `karpenter.sh/v1` NodeClaims: one GPU node each for a Workspace (§4.2, §4.3).

Naming scheme (the crash-safety rule): `ws` + the first 9 hex digits of sha256("<ns>/<ws>") +
`-<slot>`, slot 0, 1, 2, … KAITO named NodeClaims from a timestamp, so a controller that crashed
between creating a NodeClaim and recording it made a second one on restart. With names derived
from the Workspace and a slot, a restarted controller recomputes the same names, and a create that
already happened answers AlreadyExists instead of duplicating a GPU node. The controller picks the
lowest slots not used by an existing NodeClaim (a deleting one keeps its slot until it is gone).

NodeClaims are cluster-scoped, so they carry no owner reference; the workspace labels let the
finalizer find and delete them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from kaito.api import labels
from kaito.api.hub import Workspace
from kaito.catalog.presets import Preset
from kaito.manifests import ownership

Cloud = Literal["azure", "aws"]
KAITO_NODEPOOL = "kaito"  # a NodePool that does not exist: Karpenter must not scale it (KAITO's trick)
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
OS_LABEL = "kubernetes.io/os"
AZURE_SKU_LABEL = "karpenter.azure.com/sku-name"
AWS_GPU_COUNT_LABEL = "karpenter.k8s.aws/instance-gpu-count"
DEFAULT_DISK = "1024Gi"  # KAITO v0.12's request when no preset says otherwise


@dataclass(frozen=True, kw_only=True)
class NodeClassRef:
    group: str
    kind: str
    name: str = "default"


NODE_CLASSES: dict[str, NodeClassRef] = {
    "azure": NodeClassRef(group="karpenter.azure.com", kind="AKSNodeClass"),
    "aws": NodeClassRef(group="karpenter.k8s.aws", kind="EC2NodeClass"),
}


def build_nodeclaim_name(namespace: str, workspace: str, slot: int) -> str:
    """The deterministic name of a Workspace's NodeClaim in `slot` (see the module docstring)."""
    digest = hashlib.sha256(f"{namespace}/{workspace}".encode()).hexdigest()[:9]
    return f"ws{digest}-{slot}"


def compute_disk_request(ws: Workspace, preset: Preset | None) -> str:
    """Node disk: the tuning disk for tuning Workspaces, else the preset's inference disk."""
    if preset is None:
        return DEFAULT_DISK
    if ws.tuning is not None and preset.tuning is not None:
        return preset.tuning.disk
    return preset.disk


def build_nodeclaim_labels(ws: Workspace) -> dict[str, str]:
    """The user's `matchLabels` (so the node matches the Workspace's selector), KAITO's node markers
    and the workspace keys, which win over anything the user wrote."""
    return {
        **ownership.placement_labels(ws),
        labels.LABEL_KARPENTER_NODEPOOL: KAITO_NODEPOOL,
        labels.LABEL_MACHINE_TYPE: "gpu",
        **ownership.build_workspace_labels(ws),
    }


def build_nodeclaim(
    ws: Workspace,
    *,
    name: str,
    instance_type: str,
    disk: str,
    cloud: Cloud = "azure",
    node_class: NodeClassRef | None = None,
) -> dict[str, Any]:
    node_class = node_class or NODE_CLASSES[cloud]
    requirements: list[dict[str, Any]] = [
        {"key": labels.LABEL_KARPENTER_NODEPOOL, "operator": "In", "values": [KAITO_NODEPOOL]},
        {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [instance_type]},
        {"key": OS_LABEL, "operator": "In", "values": ["linux"]},
    ]
    if cloud == "azure":
        requirements.append({"key": AZURE_SKU_LABEL, "operator": "In", "values": [instance_type]})
    else:
        requirements.append({"key": AWS_GPU_COUNT_LABEL, "operator": "Gt", "values": ["0"]})
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodeClaim",
        "metadata": {
            "name": name,
            "labels": build_nodeclaim_labels(ws),
            "annotations": {labels.ANNOTATION_DO_NOT_DISRUPT: "true"},
        },
        "spec": {
            "nodeClassRef": {"group": node_class.group, "kind": node_class.kind, "name": node_class.name},
            "taints": [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}],
            "requirements": requirements,
            "resources": {"requests": {"storage": disk}},
        },
    }


def build_nodeclaims(
    ws: Workspace,
    preset: Preset | None,
    *,
    count: int | None = None,
    cloud: Cloud = "azure",
    node_class: NodeClassRef | None = None,
) -> list[dict[str, Any]]:
    """NodeClaims for slots 0…count-1 (default: the whole `resource.count`, as `kaito render` shows)."""
    resource = ws.resource
    if resource is None:
        return []
    n = count if count is not None else (resource.count or 1)
    instance_type = resource.instance_type or ""
    disk = compute_disk_request(ws, preset)
    return [
        build_nodeclaim(
            ws,
            name=build_nodeclaim_name(ws.namespace, ws.name, slot),
            instance_type=instance_type,
            disk=disk,
            cloud=cloud,
            node_class=node_class,
        )
        for slot in range(n)
    ]
