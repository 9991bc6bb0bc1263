"""Kube-backend specifics over real HTTP (emulator): the manager's watches survive 410 Gone and
dropped streams, and a conflicting or throttled status write is retried."""

from __future__ import annotations

from kaito.cluster import protocol
from kaito.controller.manager import Manager
from kaito.controller.observe import WorkspaceKey
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings
from tests.integration.controller.harness import CountingCluster, conditions, make_workspace
from tests.integration.controller.test_manager import kubelet_running, succeeded, wait_for
from tests.support.kubelet import FakeKubelet

SETTINGS = Settings(pending_requeue_s=0.05, workers=3)


async def test_manager_over_http_recovers_from_gone_and_dropped_watches(emulated):
    cluster, emulator = emulated.cluster, emulated.emulator
    kubelet = FakeKubelet(cluster)
    async with Manager(cluster, SETTINGS, resync_period=None) as manager, kubelet_running(kubelet, 0.05):
        await cluster.apply(make_workspace("first"), field_manager="kubectl")
        await wait_for(lambda: succeeded(cluster, ["first"]), timeout=30)
        # A write no watch sees, then compaction: every watch's last resourceVersion is now too old...
        marker = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "marker", "namespace": "other"},
        }
        await cluster.apply(marker, field_manager="test")
        emulator.compact()
        emulator.drop_watches()  # ...and the streams end: resuming gets 410 Gone
        await wait_for(lambda: _relisted(manager), timeout=10)
        await cluster.apply(make_workspace("second"), field_manager="kubectl")
        await wait_for(lambda: succeeded(cluster, ["first", "second"]), timeout=30)
        assert manager.relists.get("Workspace", 0) >= 1
        assert len((await cluster.list(protocol.NODECLAIM)).items) == 2


async def _relisted(manager: Manager) -> bool:
    return manager.relists.get("Workspace", 0) >= 1


class ConflictOnFirstStatusWrite(CountingCluster):
    """Makes the API server answer the first status write with 409, as a racing writer would."""

    def __init__(self, inner, emulator) -> None:
        super().__init__(inner)
        self.emulator = emulator
        self.armed = True

    async def apply_status(self, obj, **kwargs):
        if self.armed:
            self.armed = False
            self.emulator.fail_next(409)
        return await self.inner.apply_status(obj, **kwargs)


async def test_status_conflict_is_retried_after_a_fresh_read(emulated):
    cluster = ConflictOnFirstStatusWrite(emulated.cluster, emulated.emulator)
    await emulated.cluster.apply(make_workspace(), field_manager="kubectl")
    await Reconciler(cluster, SETTINGS).reconcile(WorkspaceKey("default", "ws"))
    assert not cluster.armed
    ws = await emulated.cluster.get(protocol.WORKSPACE, "ws")
    assert conditions(ws)["NodeClaimReady"] == ("Unknown", "CreateNodeClaimPending")
    status_writes = [r for r in emulated.emulator.requests if r.method == "PATCH" and "/status" in str(r.url)]
    assert len(status_writes) == 2


async def test_throttled_writes_are_retried_by_the_backend(emulated):
    await emulated.cluster.apply(make_workspace(), field_manager="kubectl")
    emulated.emulator.fail_next(429, times=2)
    await Reconciler(emulated.cluster, SETTINGS).reconcile(WorkspaceKey("default", "ws"))
    ws = await emulated.cluster.get(protocol.WORKSPACE, "ws")
    assert "NodeClaimReady" in conditions(ws)
    assert len((await emulated.cluster.list(protocol.NODECLAIM)).items) == 1
