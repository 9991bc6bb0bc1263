"""Where a Service is reached on this machine: the local port of a ready pod behind it.

The local cluster has no cluster DNS and no kube-proxy. A pod that calls another Service (a RAG
service calling its Workspace's model server) is given the local address of a ready pod that the
Service selects, on the container port the Service targets: what kube-proxy would route to. The
address exists only while such a pod is ready, and a replaced pod has another port, so whoever
uses it (the RAGEngine controller, through `kaito.controller.ragengine.target.ServiceEndpoints`)
looks it up again when the Workspace behind it changes.
"""

from __future__ import annotations

from typing import Any

from kaito.cluster import errors, protocol
from kaito.cluster.local.runner import find_local_endpoint
from kaito.cluster.protocol import Cluster


def _target_port(service: dict[str, Any], port: int) -> int | None:
    for entry in (service.get("spec") or {}).get("ports") or []:
        if entry.get("port") == port:
            target = entry.get("targetPort", port)
            return int(target) if isinstance(target, int) or str(target).isdigit() else None
    return None


class LocalServiceEndpoints:
    """`ServiceEndpoints` of the local cluster."""

    async def service_url(self, cluster: Cluster, namespace: str, name: str, port: int) -> str | None:
        try:
            service = await cluster.get(protocol.SERVICE, name, namespace)
        except errors.NotFound:
            return None
        selector = (service.get("spec") or {}).get("selector") or {}
        target = _target_port(service, port)
        if not selector or target is None:
            return None
        pods = await cluster.list(protocol.POD, namespace, selector)
        return find_local_endpoint(pods.items, target)
