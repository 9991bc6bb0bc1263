"""The Services in front of an inference workload (§3.2).

`<ws>` keeps KAITO's ports so existing clients work unchanged: `http` 80→5000 (the model server)
and `torch` 29500 (distributed rendezvous). For a multi-node StatefulSet it targets pod 0, the
rank that serves HTTP; `<ws>-headless` gives every pod a stable DNS name for the rendezvous.
`publishNotReadyAddresses` is set as in KAITO: ranks must find each other before any is Ready.
"""

from __future__ import annotations

from typing import Any

from kaito.api import labels
from kaito.api.hub import Workspace
from kaito.manifests import ownership

HTTP_PORT = 80
SERVER_PORT = 5000
TORCH_PORT = 29500
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"


def headless_service_name(ws: Workspace) -> str:
    return f"{ws.name}-headless"


def wants_load_balancer(ws: Workspace) -> bool:
    """KAITO exposes a LoadBalancer only for the exact annotation value "True"."""
    return (ws.metadata.annotations or {}).get(labels.ANNOTATION_ENABLE_LB) == "True"


def build_service(ws: Workspace, *, multi_node: bool) -> dict[str, Any]:
    """Service `<ws>`: 80→5000 and 29500, ClusterIP or LoadBalancer."""
    selector = ownership.build_selector_labels(ws)
    if multi_node:
        selector[POD_NAME_LABEL] = f"{ws.name}-0"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ownership.build_metadata(ws, ws.name),
        "spec": {
            "type": "LoadBalancer" if wants_load_balancer(ws) else "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "http", "port": HTTP_PORT, "targetPort": SERVER_PORT, "protocol": "TCP"},
                {"name": "torch", "port": TORCH_PORT, "targetPort": TORCH_PORT, "protocol": "TCP"},
            ],
            "publishNotReadyAddresses": True,
        },
    }


def build_headless_service(ws: Workspace) -> dict[str, Any]:
    """Service `<ws>-headless` (clusterIP None) naming each StatefulSet pod for the rendezvous."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ownership.build_metadata(ws, headless_service_name(ws)),
        "spec": {
            "clusterIP": "None",
            "selector": ownership.build_selector_labels(ws),
            "ports": [{"name": "torchrun", "port": TORCH_PORT, "targetPort": TORCH_PORT, "protocol": "TCP"}],
            "publishNotReadyAddresses": True,
        },
    }
