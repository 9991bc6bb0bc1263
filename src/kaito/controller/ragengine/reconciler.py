"""One reconcile of one RAGEngine: observe → plan → execute → status, never waiting on the world.

Errors are sorted by type here, as for Workspaces (`kaito.controller.reconciler`): a busy or racing
API server is a `TemporaryError` for the work queue to retry; an object the API server refuses as
invalid is a condition on the engine (`plan.plan_rejected`); anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kaito.cluster import errors, protocol
from kaito.cluster.protocol import Cluster, Object
from kaito.controller import execute as execute_mod
from kaito.controller.errors import TemporaryError
from kaito.controller.events import emit_events
from kaito.controller.ragengine import plan as plan_mod
from kaito.controller.ragengine import status as status_mod
from kaito.controller.ragengine.observe import RAGEngineKey, observe_ragengine
from kaito.controller.ragengine.target import ClusterDNS, ServiceEndpoints
from kaito.controller.reconciler import ReconcileStats
from kaito.controller.settings import Settings


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def execute(cluster: Cluster, raw: Mapping[str, Any], plan: plan_mod.RAGPlan, now: datetime) -> None:
    """Writes, then the status, then events: the whole effect of one reconcile."""
    await execute_mod.execute_plan(cluster, raw, plan)
    if plan.status is not None and plan.status_facts is not None:
        facts = plan.status_facts

        def recompute(old: Mapping[str, Any] | None) -> Object:
            return status_mod.compute_status(old, facts, now)

        await execute_mod.write_status(cluster, raw, plan.status, recompute, kind=protocol.RAGENGINE,
                                       changed=status_mod.status_changed)
    if plan.events:
        await emit_events(cluster, raw, plan.events)


class RAGEngineReconciler:
    def __init__(self, cluster: Cluster, settings: Settings, *, endpoints: ServiceEndpoints | None = None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.cluster = cluster
        self.settings = settings
        self.endpoints = endpoints or ClusterDNS()
        self.clock = clock
        self.stats = ReconcileStats()

    async def reconcile(self, key: RAGEngineKey) -> float | None:
        self.stats.reconciles += 1
        try:
            return await self._reconcile(key)
        except (errors.Unavailable, errors.Conflict, errors.Gone) as exc:
            self.stats.temporary_errors += 1
            raise TemporaryError(f"{key}: {exc}") from exc

    async def _reconcile(self, key: RAGEngineKey) -> float | None:
        observed = await observe_ragengine(self.cluster, key, self.endpoints,
                                           provisioning=self.settings.provisions_nodes)
        if observed.ragengine is None:
            return None  # deleted: its Service and Deployment go with it (GC), its NodeClaims went first
        now = self.clock()
        plan = plan_mod.plan_ragengine(observed, self.settings, now)
        self.stats.planned_writes += plan.writes
        try:
            await execute(self.cluster, observed.ragengine, plan, now)
        except errors.Invalid as exc:
            await execute(self.cluster, observed.ragengine, plan_mod.plan_rejected(observed, str(exc), now), now)
            return None
        except errors.NotFound:
            return None  # the engine (or its namespace) went away mid-reconcile: its events follow
        return plan.requeue_after
