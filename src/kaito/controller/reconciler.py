"""One reconcile of one Workspace: observe → plan → execute, never waiting on the world.

The result is the number of seconds after which to look again (None: only on the next watch
event). Cluster errors are sorted by type, once, here: a busy or racing API server is a
`TemporaryError` (the work queue retries with backoff); an object the API server rejects as
invalid (a user's pod template, say) is a condition on the Workspace (`plan.plan_rejected`), not a
retry loop. Any other exception leaves as it is: a bug, which the work queue handles (`errors`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kaito.cluster import errors
from kaito.cluster.protocol import Cluster
from kaito.controller import plan as plan_mod
from kaito.controller.errors import TemporaryError
from kaito.controller.execute import execute
from kaito.controller.observe import WorkspaceKey, observe_workspace
from kaito.controller.settings import Settings

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(kw_only=True)
class ReconcileStats:
    reconciles: int = 0
    planned_writes: int = 0
    temporary_errors: int = 0


class Reconciler:
    def __init__(
        self, cluster: Cluster, settings: Settings, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.clock = clock
        self.stats = ReconcileStats()

    async def reconcile(self, key: WorkspaceKey) -> float | None:
        self.stats.reconciles += 1
        try:
            return await self._reconcile(key)
        except (errors.Unavailable, errors.Conflict, errors.Gone) as exc:
            self.stats.temporary_errors += 1
            raise TemporaryError(f"{key}: {exc}") from exc

    async def _reconcile(self, key: WorkspaceKey) -> float | None:
        observed = await observe_workspace(self.cluster, key, provisioning=self.settings.provisions_nodes)
        if observed.workspace is None:
            return None  # deleted; its owned objects go with it (GC), its NodeClaims went first (finalizer)
        now = self.clock()
        plan = plan_mod.plan_workspace(observed, self.settings, now)
        self.stats.planned_writes += plan.writes
        try:
            await execute(self.cluster, observed.workspace, plan, now)
        except errors.Invalid as exc:
            await execute(self.cluster, observed.workspace, plan_mod.plan_rejected(observed, str(exc), now), now)
            return None
        except errors.NotFound:
            return None  # the Workspace (or its namespace) went away mid-reconcile: its events follow
        return plan.requeue_after
