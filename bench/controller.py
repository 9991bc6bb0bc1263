"""Controller benchmark: N Workspaces through the local store with instant nodes (not a test).

For each N: apply N inference Workspaces, run the manager (watches → queue → workers) with a fake
provisioner/kubelet that makes nodes and workloads ready at once, and report
* the time until every Workspace is `WorkspaceSucceeded=True`,
* reconciles per second,
* API writes per Workspace against the minimum (one per owned object + one status write),
* the writes and time of one full resync of the now-steady cluster (should be zero writes),
* peak memory (Python allocations, tracemalloc; and the process's max RSS).

    .venv/bin/python bench/controller.py            # N = 100 and 1000
    .venv/bin/python bench/controller.py --n 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support when run as a script

from tests.integration.controller.harness import CountingCluster, make_workspace  # noqa: E402
from tests.support.kubelet import FakeKubelet  # noqa: E402

from kaito.cluster import protocol  # noqa: E402
from kaito.cluster.local import LocalCluster  # noqa: E402
from kaito.controller.manager import Manager  # noqa: E402
from kaito.controller.reconciler import Reconciler  # noqa: E402
from kaito.controller.settings import Settings  # noqa: E402

# Objects a single-node preset Workspace owns: ControllerRevision, NodeClaim, Service, Deployment.
OWNED_OBJECTS = 4


async def _all_succeeded(cluster: LocalCluster, n: int) -> bool:
    items = (await cluster.list(protocol.WORKSPACE, "bench")).items
    done = 0
    for ws in items:
        for cond in (ws.get("status") or {}).get("conditions") or []:
            if cond["type"] == "WorkspaceSucceeded" and cond["status"] == "True":
                done += 1
    return done == n


async def run(n: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalCluster(Path(tmp) / "bench.db", poll_interval=0.05, history=max(20_000, n * 40))
        counting = CountingCluster(store)
        settings = Settings(pending_requeue_s=1.0, workers=workers)
        reconciler = Reconciler(counting, settings)
        kubelet = FakeKubelet(store)
        for i in range(n):
            await store.apply(make_workspace(f"ws{i:04d}", "bench"), field_manager="kubectl")

        async def instant(kind: protocol.ResourceKind, act) -> None:
            # Event-driven, so the stand-in costs O(1) per change, not a re-list of everything:
            # the numbers measure the controller, not the harness.
            async for event in store.watch(kind):
                if event.type != "DELETED":
                    await act(event.object)

        helpers = [
            instant(protocol.NODECLAIM, kubelet.launch),
            instant(protocol.DEPLOYMENT, kubelet.mark_ready),
        ]

        tracemalloc.start()
        started = time.perf_counter()
        tasks = [asyncio.create_task(h) for h in helpers]
        async with Manager(counting, settings, reconciler=reconciler, resync_period=None) as manager:
            while not await _all_succeeded(store, n):
                await asyncio.sleep(0.25)
            elapsed = time.perf_counter() - started
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await manager.wait_idle(settle=0.3, timeout=600)
            reconciles = reconciler.stats.reconciles
            writes = Counter(counting.writes)
            total_writes = counting.total

            counting.reset()
            before = reconciler.stats.reconciles
            resync_started = time.perf_counter()
            manager.resync()
            await manager.wait_idle(settle=0.3, timeout=600)
            resync_s = time.perf_counter() - resync_started
            resync_writes = counting.total
            resync_reconciles = reconciler.stats.reconciles - before
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await store.close()
    events = sum(v for k, v in writes.items() if k.startswith("emit_event"))
    api_writes = total_writes - events
    return {
        "n": n,
        "time_to_ready_s": elapsed,
        "reconciles": reconciles,
        "reconciles_per_s": reconciles / elapsed,
        "writes_per_ws": api_writes / n,
        "events_per_ws": events / n,
        "min_writes_per_ws": OWNED_OBJECTS + 1,
        "write_breakdown": {k: round(v / n, 2) for k, v in sorted(writes.items())},
        "resync_reconciles": resync_reconciles,
        "resync_s": resync_s,
        "resync_writes": resync_writes,
        "peak_python_mib": peak / 2**20,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="Workspace counts (default 100 and 1000)")
    parser.add_argument("--workers", type=int, default=5, help="concurrent reconciles (KAITO uses 5)")
    args = parser.parse_args()
    for n in args.n or [100, 1000]:
        r = asyncio.run(run(n, args.workers))
        print(f"N={r['n']}")
        print(f"  time to all ready      {r['time_to_ready_s']:.1f} s")
        print(
            f"  reconciles             {r['reconciles']} ({r['reconciles_per_s']:.0f}/s, {r['reconciles'] / n:.1f} per Workspace)"
        )
        print(
            f"  API writes/Workspace   {r['writes_per_ws']:.2f} (minimum {r['min_writes_per_ws']}: "
            f"ratio {r['writes_per_ws'] / r['min_writes_per_ws']:.2f}) + {r['events_per_ws']:.2f} events"
        )
        print(f"  breakdown/Workspace    {r['write_breakdown']}")
        print(
            f"  full resync            {r['resync_reconciles']} reconciles in {r['resync_s']:.1f} s, {r['resync_writes']} writes"
        )
        print(
            f"  peak memory            {r['peak_python_mib']:.0f} MiB Python allocations, {r['max_rss_mib']:.0f} MiB max RSS"
        )


if __name__ == "__main__":
    main()
