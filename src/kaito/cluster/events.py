"""Kubernetes Event objects about the objects kaito manages, built the same way for every backend.

The name is derived from the involved object and the event's content, so repeating the same
event finds the same Event and bumps its `count` (what client-go's event recorder does) instead
of piling up one object per repeat.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from kaito.cluster.protocol import DEFAULT_NAMESPACE

EVENT_COMPONENT = "kaito"


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps (RFC 3339, seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_event(involved: dict[str, Any], type: str, reason: str, message: str) -> dict[str, Any]:
    """A `v1` Event about `involved` (in its namespace, or `default` for cluster-scoped objects)."""
    meta = involved.get("metadata") or {}
    name = meta.get("name", "unknown")
    identity = f"{involved.get('kind')}|{meta.get('namespace', '')}|{name}|{meta.get('uid', '')}"
    digest = hashlib.sha256(f"{identity}|{type}|{reason}|{message}".encode()).hexdigest()[:16]
    reference = {
        "apiVersion": involved.get("apiVersion"),
        "kind": involved.get("kind"),
        "name": name,
        **({"namespace": meta["namespace"]} if meta.get("namespace") else {}),
        **({"uid": meta["uid"]} if meta.get("uid") else {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{digest}", "namespace": meta.get("namespace") or DEFAULT_NAMESPACE},
        "involvedObject": reference,
        "type": type,
        "reason": reason,
        "message": message,
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
    }
