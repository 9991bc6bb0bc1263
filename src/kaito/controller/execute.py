"""Execute: carry out a `Plan` through the `Cluster` protocol, in a crash-safe order.

Order matters for crash safety, not for correctness of any single run:
1. the Workspace's finalizer and revision annotations first, so no NodeClaim can exist for a
   Workspace that could be deleted without the controller noticing (NodeClaims are not
   garbage-collected);
2. the ControllerRevision, then NodeClaims (deterministic names: a repeat is not a duplicate);
3. Services before the workload (KAITO's order), then deletions;
4. the status last, from the facts observed at the start.
Every write is server-side apply with field manager `kaito`, except the Workspace's metadata,
written under the controller's own manager (see `settings.WORKSPACE_FIELD_MANAGER`) and guarded by
the resourceVersion read, so a Workspace deleted meanwhile is never re-created by our apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from kaito.cluster import errors, protocol
from kaito.cluster.protocol import FIELD_MANAGER, Cluster, Object
from kaito.controller import status as status_mod
from kaito.controller.events import emit_events
from kaito.controller.plan import Deletion, Plan
from kaito.controller.settings import WORKSPACE_FIELD_MANAGER

STATUS_WRITE_ATTEMPTS = 3


class Writes(Protocol):
    """The writes of a plan of any kind (`plan.Plan` for Workspaces, `ragengine.plan.RAGPlan`)."""

    workspace_patch: Object | None  # the reconciled object's own metadata (named for the Workspace's)
    revision: Object | None
    nodeclaims: Sequence[Object]
    apply: Sequence[Object]
    delete: Sequence[Deletion]


async def execute_plan(cluster: Cluster, workspace: Mapping[str, Any], plan: Writes) -> None:
    """All writes of `plan` except the status (see `write_status`) and events; `workspace` is the
    object reconciled, as read (a Workspace or any other kind)."""
    if plan.workspace_patch is not None:
        patch = dict(plan.workspace_patch)
        patch["metadata"] = {
            **patch["metadata"],
            "resourceVersion": (workspace.get("metadata") or {}).get("resourceVersion"),
        }
        await cluster.apply(patch, field_manager=WORKSPACE_FIELD_MANAGER, force=True)
    if plan.revision is not None:
        await cluster.apply(plan.revision, field_manager=FIELD_MANAGER)
    for claim in plan.nodeclaims:
        await cluster.apply(claim, field_manager=FIELD_MANAGER)
    for obj in plan.apply:
        await cluster.apply(obj, field_manager=FIELD_MANAGER, force=True)
    for gone in plan.delete:
        try:
            await cluster.delete(gone.kind, gone.name, gone.namespace, propagation=gone.propagation)
        except errors.NotFound:
            pass  # someone (GC, a user, our previous run) was faster: the goal is reached


async def write_status(
    cluster: Cluster,
    workspace: Mapping[str, Any],
    new_status: Object,
    recompute: Callable[[Mapping[str, Any] | None], Object],
    *,
    kind: protocol.ResourceKind = protocol.WORKSPACE,
    changed: Callable[[Mapping[str, Any] | None, Mapping[str, Any]], bool] = status_mod.status_changed,
) -> bool:
    """Write `new_status` of the `kind` object `workspace`; on a conflict re-read and recompute from
    the fresh status (`changed` tells whether a write is still needed), a few times.

    Returns False when the object is gone (nothing to write to).
    """
    current: Mapping[str, Any] = workspace
    desired = new_status
    for attempt in range(STATUS_WRITE_ATTEMPTS):
        meta = current.get("metadata") or {}
        body = {
            "apiVersion": current.get("apiVersion"),
            "kind": current.get("kind"),
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "status": desired,
        }
        try:
            await cluster.apply_status(body, field_manager=FIELD_MANAGER)
            return True
        except errors.NotFound:
            return False
        except errors.Conflict:
            if attempt == STATUS_WRITE_ATTEMPTS - 1:
                raise
            try:
                current = await cluster.get(kind, meta.get("name"), meta.get("namespace"))
            except errors.NotFound:
                return False
            desired = recompute(current.get("status"))
            if not changed(current.get("status"), desired):
                return True
    return True


async def execute(cluster: Cluster, workspace: Mapping[str, Any], plan: Plan, now: datetime) -> None:
    """Writes, then status, then events: the whole effect of one reconcile."""
    await execute_plan(cluster, workspace, plan)
    if plan.status is not None and plan.status_facts is not None:
        facts = plan.status_facts

        def recompute(old: Mapping[str, Any] | None) -> Object:
            return status_mod.compute_status(old, facts, now)

        await write_status(cluster, workspace, plan.status, recompute)
    if plan.events:
        await emit_events(cluster, workspace, plan.events)
