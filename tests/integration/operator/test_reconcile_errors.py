"""A bug in planning, end to end: an event on the Workspace, a metric, capped retries, the rest unharmed.

Planning is pure and never raises on a user's input; when it does anyway, that is a bug in kaito
(ARCHITECTURE rule 2). The operator must then say so where people look - a Warning event that
`kaito describe` shows, `kaito_reconcile_errors_total{kind="bug"}`, a log line with the traceback
- stop retrying after `bug_retry_limit`, and keep reconciling every other Workspace.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from kaito.cluster import protocol
from kaito.cluster.local import LocalCluster
from kaito.controller import plan as plan_mod
from kaito.controller.errors import ErrorKind
from kaito.controller.manager import REASON_RECONCILE_ERROR
from kaito.controller.settings import Settings
from kaito.operator.metrics import OperatorMetrics
from kaito.operator.process import OperatorManager
from tests.integration.controller.harness import make_workspace
from tests.integration.controller.test_manager import kubelet_running, succeeded, wait_for
from tests.support.kubelet import FakeKubelet

RETRY_LIMIT = 3


def _samples(metrics: OperatorMetrics) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(metrics.render().decode()) for s in f.samples}


async def test_a_bug_in_planning_is_reported_retried_with_a_cap_and_isolated(tmp_path, monkeypatch, caplog):
    real_plan = plan_mod.plan_workspace
    planned: Counter[str] = Counter()

    def plan_with_a_bug(observed, settings, now):
        planned[observed.key.name] += 1
        if observed.key.name == "broken":
            return {}["preset-table"]  # the KeyError a real bug would raise
        return real_plan(observed, settings, now)

    monkeypatch.setattr(plan_mod, "plan_workspace", plan_with_a_bug)
    caplog.set_level(logging.ERROR, logger="kaito.controller.manager")
    home = tmp_path / "home"
    home.mkdir()
    store = LocalCluster(home / "store.db", poll_interval=0.02)
    metrics = OperatorMetrics()
    settings = Settings(pending_requeue_s=0.05, workers=2, bug_retry_limit=RETRY_LIMIT)
    manager = OperatorManager(store, settings, metrics, resync_period=None)
    try:
        async with manager, kubelet_running(FakeKubelet(store)):
            for name in ("broken", "good0", "good1"):
                await store.apply(make_workspace(name), field_manager="kubectl")
            await wait_for(lambda: succeeded(store, ["good0", "good1"]))  # the others converge

            async def gave_up() -> bool:
                return any(f.gave_up for f in manager.errors)

            await wait_for(gave_up)
            await manager.wait_idle(settle=0.2)
            bugs = [f for f in manager.errors if f.kind is ErrorKind.BUG]
            events = (await store.list(protocol.EVENT, "default")).items
    finally:
        await store.close()

    # Retries stop at the cap: the first attempt and RETRY_LIMIT retries, then nothing.
    assert planned["broken"] == 1 + RETRY_LIMIT
    assert [(f.attempt, f.gave_up) for f in bugs] == [(n, n == 1 + RETRY_LIMIT) for n in range(1, 2 + RETRY_LIMIT)]
    assert all(isinstance(f.error, KeyError) for f in bugs)

    # The metric moves, by kind; controller-runtime's own counter moves too.
    samples = _samples(metrics)
    assert samples[("kaito_reconcile_errors_total", (("controller", "workspace"), ("kind", "bug")))] == 1 + RETRY_LIMIT
    assert samples[("controller_runtime_reconcile_errors_total", (("controller", "workspace"),))] >= 1 + RETRY_LIMIT

    # The traceback is logged.
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is KeyError]
    assert len(logged) == 1 + RETRY_LIMIT and "broken" in logged[0].getMessage()

    # The Workspace gets Warning events (repeats aggregate into one Event with a count) ...
    mine = [e for e in events if e["involvedObject"]["name"] == "broken" and e["reason"] == REASON_RECONCILE_ERROR]
    assert {e["type"] for e in mine} == {"Warning"}
    assert sorted((e.get("count") or 1) for e in mine) == [1, RETRY_LIMIT]
    assert any("not retried until the Workspace changes" in e["message"] for e in mine)
    assert all("KeyError" in e["message"] for e in mine)
    assert not [e for e in events if e["reason"] == REASON_RECONCILE_ERROR and e["involvedObject"]["name"] != "broken"]

    # ... and `kaito describe` shows them.
    from typer.testing import CliRunner

    from kaito.cli.main import app

    described = await asyncio.to_thread(CliRunner().invoke, app, ["describe", "workspace", "broken", "--home", str(home)])
    assert described.exit_code == 0, described.output
    assert REASON_RECONCILE_ERROR in described.output and "KeyError" in described.output
