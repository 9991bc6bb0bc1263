"""Which Workspace a RAGEngine answers through, and where that Workspace's Service is reached.

`inferenceService.url` is a URL (KAITO's contract). Written the way KAITO's examples write it — the
Workspace's Service by name, `http://<workspace>/v1/chat/completions`, or qualified with the engine's
own namespace (`<workspace>.<ns>`, `.svc`, `.svc.cluster.local`), on port 80 — and naming a Workspace
that exists, it is that Workspace: the controller reports whether it serves and is re-planned when it
changes. A URL naming no Workspace is used as written (another Service, or outside the cluster).

Where a Service is reached is the cluster's business, behind `ServiceEndpoints`: in Kubernetes its
DNS name (`ClusterDNS`, always known); on the local cluster, the local port of a ready pod behind it
(`kaito.cluster.local.services`, known only once the pod serves). Pure except the endpoints' lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from kaito.cluster.protocol import Cluster

SERVICE_PORT = 80  # a Workspace's Service: http 80 → 5000
DEFAULT_PATH = "/v1/chat/completions"  # a URL naming a Workspace with no path gets the chat API
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_CLUSTER_SUFFIXES = ((), ("svc",), ("svc", "cluster", "local"))


@dataclass(frozen=True)
class WorkspaceTarget:
    name: str  # the Workspace (its Service has the same name)
    path: str  # path and query to call on it


def find_workspace_target(url: str | None, namespace: str) -> WorkspaceTarget | None:
    """The Workspace `url` names in `namespace` by its Service's name, or None (see the docstring)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme != "http" or port not in (None, SERVICE_PORT) or parts.username or not host:
        return None
    first, *rest = host.split(".")
    if not _DNS_LABEL.match(first):
        return None
    if rest and (rest[0] != namespace or tuple(rest[1:]) not in _CLUSTER_SUFFIXES):
        return None
    path = parts.path if parts.path not in ("", "/") else DEFAULT_PATH
    return WorkspaceTarget(first, path + (f"?{parts.query}" if parts.query else ""))


class ServiceEndpoints(Protocol):
    """Where a Service is reached from a pod of this cluster."""

    async def service_url(self, cluster: Cluster, namespace: str, name: str, port: int) -> str | None:
        """`scheme://host[:port]` of Service `name`'s `port`; None while it cannot be reached yet."""


class ClusterDNS:
    """Kubernetes: the Service's cluster DNS name, reachable from every pod once the Service serves."""

    async def service_url(self, cluster: Cluster, namespace: str, name: str, port: int) -> str | None:
        suffix = "" if port == SERVICE_PORT else f":{port}"
        return f"http://{name}.{namespace}.svc.cluster.local{suffix}"
