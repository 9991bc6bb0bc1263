"""One reconcile of one InferenceSet: observe → plan → execute, never waiting on the world.

Execution order is chosen for crash safety: the set's finalizer first (no child can exist for a set
that could vanish unnoticed), the ControllerRevision, then the children (created under field
manager `kaito`; their names are computed, so a repeat after a crash re-applies the same child),
label updates, gateway objects, deletions, the status once, events last. The set's own metadata is
written under the controller's manager and guarded by the resourceVersion read, so a set deleted
meanwhile is never re-created by that write. Errors are sorted as the Workspace reconciler sorts
them (`reconciler`): a busy or racing API server is a `TemporaryError`, the work queue retries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from kaito.catalog import facts as catalog_facts
from kaito.cluster import errors, protocol
from kaito.cluster.protocol import FIELD_MANAGER, Cluster, Object
from kaito.controller.errors import TemporaryError
from kaito.controller.events import emit_events
from kaito.controller.inferenceset import plan as plan_mod
from kaito.controller.inferenceset.observe import InferenceSetKey, observe_inferenceset
from kaito.controller.settings import WORKSPACE_FIELD_MANAGER, Settings


def _utcnow() -> datetime:
    return datetime.now(UTC)


class InferenceSetReconciler:
    def __init__(self, cluster: Cluster, settings: Settings, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.cluster = cluster
        self.settings = settings
        self.clock = clock
        self.facts = catalog_facts.build_catalog_facts(settings.cloud)
        self.reconciles = 0

    async def reconcile(self, key: InferenceSetKey) -> float | None:
        self.reconciles += 1
        try:
            observed = await observe_inferenceset(self.cluster, key, gateway_on=self.settings.inferenceset_gateway)
            if observed.inference_set is None:
                return None  # deleted: its children went before the finalizer was released
            plan = plan_mod.plan_inferenceset(observed, self.settings, self.facts, self.clock())
            try:
                await execute_set_plan(self.cluster, observed.inference_set, plan)
            except errors.NotFound:
                return None  # the set (or its namespace) went away mid-reconcile: its events follow
            return plan.requeue_after
        except (errors.Unavailable, errors.Conflict, errors.Gone) as exc:
            raise TemporaryError(f"InferenceSet {key}: {exc}") from exc


async def execute_set_plan(cluster: Cluster, raw: Object, plan: plan_mod.SetPlan) -> None:
    """Carry out `plan` (see the module docstring for the order)."""
    if plan.set_patch is not None:
        patch = dict(plan.set_patch)
        patch["metadata"] = {**patch["metadata"], "resourceVersion": (raw.get("metadata") or {}).get("resourceVersion")}
        await cluster.apply(patch, field_manager=WORKSPACE_FIELD_MANAGER, force=True)
    if plan.revision is not None:
        await cluster.apply(plan.revision, field_manager=FIELD_MANAGER)
    for child in plan.create:
        await cluster.apply(child, field_manager=FIELD_MANAGER, force=True)
    for labelled in plan.relabel:
        try:
            await cluster.apply(labelled, field_manager=plan_mod.LABEL_FIELD_MANAGER, force=True)
        except errors.NotFound:
            pass  # deleted meanwhile: nothing to label
    for obj in plan.apply:
        await cluster.apply(obj, field_manager=FIELD_MANAGER, force=True)
    for gone in plan.delete:
        try:
            await cluster.delete(gone.kind, gone.name, gone.namespace, propagation=gone.propagation)
        except errors.NotFound:
            pass  # someone (GC, a user, our previous run) was faster
    if plan.status is not None:
        meta = raw.get("metadata") or {}
        await cluster.apply_status({"apiVersion": protocol.INFERENCESET.api_version, "kind": protocol.INFERENCESET.kind,
                                    "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
                                    "status": plan.status}, field_manager=FIELD_MANAGER)
    if plan.events:
        await emit_events(cluster, raw, plan.events)
