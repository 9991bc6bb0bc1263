"""Kubernetes Events for each step the controller takes (`kubectl describe workspace` shows them).

Events are emitted only for actions — a NodeClaim created, a workload rolled, a user error — never
for a reconcile that found nothing to do, so a steady state stays at zero writes. Recording is best
effort: `Cluster.emit_event` swallows its own failures, and so does this wrapper for a backend that
does not, because an Event is never worth failing a reconcile for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from kaito.cluster.protocol import Cluster

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"


async def emit_events(
    cluster: Cluster, involved: Mapping[str, Any], events: Iterable[tuple[str, str, str]]
) -> int:
    """Record each (type, reason, message) about `involved`; returns how many were sent."""
    sent = 0
    for type_, reason, message in events:
        try:
            await cluster.emit_event(dict(involved), type_, reason, message)
            sent += 1
        except Exception:  # noqa: BLE001 - see the module docstring
            log.warning(
                "could not record event %s for %s", reason, (involved.get("metadata") or {}).get("name")
            )
    return sent
