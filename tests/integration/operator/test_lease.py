"""Leader election over the real local store: one leader, conflicts decide races, release, loss."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client.parser import text_string_to_metric_families

from kaito.cluster import protocol
from kaito.cluster.local import LocalCluster
from kaito.operator.leader_election import LeaderElector, LeaseConfig
from kaito.operator.metrics import OperatorMetrics, ProbeServer, compute_condition_counts

FAST = {"namespace": "kaito-system", "lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.05}


async def test_many_candidates_one_leader_then_takeover_after_release(tmp_path):
    stores = [LocalCluster(tmp_path / "s.db", poll_interval=0.02) for _ in range(4)]
    electors = [LeaderElector(s, LeaseConfig(identity=f"c{i}", **FAST)) for i, s in enumerate(stores)]
    leading: list[str] = []
    release = asyncio.Event()

    def work(name):
        async def run():
            leading.append(name)
            await release.wait()
        return run

    tasks = [asyncio.create_task(e.run(work(f"c{i}"))) for i, e in enumerate(electors)]
    try:
        for _ in range(100):
            if leading:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # several retry periods: nobody else may start
        assert len(leading) == 1
        first = leading[0]
        winner = electors[int(first[1:])]
        assert winner.is_leader and sum(e.is_leader for e in electors) == 1
        lease = await stores[0].get(protocol.LEASE, "kaito-operator-leader", "kaito-system")
        assert lease["spec"]["holderIdentity"] == first

        # The leader steps down cleanly: another candidate leads well before the lease would expire.
        winner.stop()
        await tasks[int(first[1:])]
        assert await winner.release()
        lease = await stores[0].get(protocol.LEASE, "kaito-operator-leader", "kaito-system")
        assert lease["spec"]["holderIdentity"] == ""
        for _ in range(100):
            if len(leading) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(leading) == 2 and leading[1] != first
        lease = await stores[0].get(protocol.LEASE, "kaito-operator-leader", "kaito-system")
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        release.set()
        for e in electors:
            e.stop()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for s in stores:
            await s.close()


async def test_leader_that_loses_the_lease_stops_its_work_at_once(tmp_path):
    store = LocalCluster(tmp_path / "s.db", poll_interval=0.02)
    elector = LeaderElector(store, LeaseConfig(identity="me", **FAST))
    cancelled = asyncio.Event()
    lost: list[bool] = []

    async def work():
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(elector.run(work, lambda: lost.append(True)))
    try:
        for _ in range(100):
            if elector.is_leader:
                break
            await asyncio.sleep(0.02)
        # Someone else overwrites the Lease (a split brain the API server resolves for us).
        lease = await store.get(protocol.LEASE, "kaito-operator-leader", "kaito-system")
        lease["spec"]["holderIdentity"] = "intruder"
        lease["metadata"].pop("resourceVersion")
        await store.apply(lease, field_manager="intruder", force=True)
        await asyncio.wait_for(task, timeout=5)
        assert cancelled.is_set() and lost == [True] and not elector.is_leader
        assert not await elector.release()  # not ours any more: never clear someone else's Lease
    finally:
        elector.stop()
        await store.close()


async def test_metrics_endpoint_parses_and_counts_conditions():
    metrics = OperatorMetrics()
    metrics.observe_reconcile(0.02, "success")
    metrics.observe_reconcile(0.5, "error")
    metrics.set_queue_depth(3)
    metrics.observe_queue_latency(0.01)
    metrics.set_condition_source(lambda: compute_condition_counts([
        {"status": {"conditions": [{"type": "WorkspaceSucceeded", "status": "True"}]}},
        {"status": {"conditions": [{"type": "WorkspaceSucceeded", "status": "False"},
                                   {"type": "ResourceReady", "status": "True"}]}},
        {"status": {"conditions": [{"type": "WorkspaceSucceeded", "status": "True"}]}},
    ]))
    server = ProbeServer("127.0.0.1", 0, metrics=metrics, ready=lambda: False)
    server.start()
    try:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            text = (await client.get("/metrics")).text
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/nope")).status_code == 404
    finally:
        server.stop()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("controller_runtime_reconcile_total", (("controller", "workspace"), ("result", "success")))] == 1
    assert samples[("controller_runtime_reconcile_errors_total", (("controller", "workspace"),))] == 1
    assert samples[("workqueue_depth", (("name", "workspace"),))] == 3
    assert samples[("workqueue_queue_duration_seconds_count", (("name", "workspace"),))] == 1
    assert samples[("controller_runtime_reconcile_time_seconds_count", (("controller", "workspace"),))] == 2
    assert samples[("kaito_workspaces", (("condition", "WorkspaceSucceeded"), ("status", "True")))] == 2
    assert samples[("kaito_workspaces", (("condition", "ResourceReady"), ("status", "True")))] == 1


async def test_operator_exits_non_zero_when_leadership_is_lost(tmp_path):
    from kaito.operator.process import EXIT_LEADERSHIP_LOST, Operator, OperatorConfig

    store = LocalCluster(tmp_path / "s.db", poll_interval=0.02)
    cfg = OperatorConfig(leader_elect=True, lease=LeaseConfig(identity="me", **FAST), metrics_address=None,
                         probe_address=None, resync_period=None)
    operator = Operator(store, cfg)
    run = asyncio.create_task(operator.run(asyncio.Event()))
    try:
        for _ in range(200):
            if operator.manager is not None:
                break
            await asyncio.sleep(0.02)
        assert operator.manager is not None and operator.elector.is_leader
        lease = await store.get(protocol.LEASE, "kaito-operator-leader", "kaito-system")
        lease["spec"]["holderIdentity"] = "intruder"
        lease["metadata"].pop("resourceVersion")
        await store.apply(lease, field_manager="intruder", force=True)
        assert await asyncio.wait_for(run, timeout=5) == EXIT_LEADERSHIP_LOST
        await asyncio.sleep(0)
        assert all(t.done() for t in operator.manager.tasks)  # workers and watches were cancelled
    finally:
        await store.close()


async def test_operator_manager_feeds_queue_and_condition_metrics_from_a_real_run(tmp_path):
    from kaito.controller.settings import Settings
    from kaito.operator.process import OperatorManager
    from tests.integration.controller.harness import make_workspace

    store = LocalCluster(tmp_path / "s.db", poll_interval=0.02)
    metrics = OperatorMetrics()
    manager = OperatorManager(store, Settings(pending_requeue_s=0.05, workers=2), metrics, resync_period=None)
    try:
        async with manager:
            await store.apply(make_workspace("ws"), field_manager="kubectl")
            for _ in range(200):  # the reconcile's status write comes back as a watch event
                if manager.condition_counts().get(("ResourceReady", "False")):
                    break
                await asyncio.sleep(0.05)
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(metrics.render().decode()) for s in f.samples}
        assert manager.condition_counts()[("ResourceReady", "False")] == 1
        assert samples[("kaito_workspaces", (("condition", "ResourceReady"), ("status", "False")))] == 1
        assert samples[("workqueue_queue_duration_seconds_count", (("name", "workspace"),))] >= 1
        assert samples[("controller_runtime_reconcile_total", (("controller", "workspace"), ("result", "requeue_after")))] >= 1
        assert samples[("workqueue_depth", (("name", "workspace"),))] == 0  # stopped: nothing left waiting
    finally:
        await store.close()
