"""Crash safety: kill the controller after any write of a reconcile, start a new one, and the
cluster converges with exactly the NodeClaims and workloads needed — none twice, none leaked."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from kaito.cluster import errors, protocol
from kaito.cluster.local import LocalCluster
from kaito.controller.observe import WorkspaceKey
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings
from tests.integration.controller.harness import CountingCluster, Crash, conditions, converge, make_workspace
from tests.support.kubelet import FakeKubelet

KEY = WorkspaceKey("default", "ws")
SEEDS = range(30)


async def _run_until_crash(
    cluster: CountingCluster, kubelet: FakeKubelet, rng: random.Random, jobs: bool
) -> bool:
    """Controller A: reconciles (with the kubelet acting at random moments) until it crashes."""
    rec = Reconciler(cluster, Settings(pending_requeue_s=0.01))
    try:
        for _ in range(12):
            await rec.reconcile(KEY)
            if rng.random() < 0.6:
                await kubelet.step()
                if jobs:
                    await kubelet.start_jobs()
    except Crash:
        return True
    return False


def _workspace(kind: str) -> dict:
    resource = {
        "instanceType": "Standard_NC24ads_A100_v4",
        "count": 3,
        "labelSelector": {"matchLabels": {"apps": "ws"}},
    }
    if kind == "inference":
        return make_workspace(resource=resource)
    return make_workspace(
        resource={**resource, "count": 1},
        inference=None,
        tuning={
            "preset": {"name": "phi-3-mini-128k-instruct"},
            "method": "lora",
            "input": {"urls": ["https://example.com/d.parquet"]},
            "output": {"image": "registry.example.com/a/b:1", "imagePushSecret": "s"},
        },
    )


@pytest.mark.parametrize("kind", ["inference", "tuning"])
async def test_restart_after_crash_at_any_write_converges_without_duplicates(tmp_path, kind):
    crashes = 0
    for seed in SEEDS:
        rng = random.Random(seed)
        store = LocalCluster(tmp_path / f"{kind}-{seed}.db", poll_interval=0.02)
        try:
            await store.apply(_workspace(kind), field_manager="kubectl")
            kubelet = FakeKubelet(store)
            crashes += await _run_until_crash(
                CountingCluster(store, crash_after=rng.randint(0, 14)), kubelet, rng, kind == "tuning"
            )
            if kind == "tuning" and rng.random() < 0.5:  # a spec change while the controller was down
                changed = _workspace(kind)
                changed["tuning"]["input"] = {"urls": ["https://example.com/other.parquet"]}
                await store.apply(changed, field_manager="kubectl")

            survivor = CountingCluster(store)
            await converge(
                Reconciler(survivor, Settings(pending_requeue_s=0.01)),
                kubelet,
                [KEY],
                jobs="start" if kind == "tuning" else None,
            )

            claims = (await store.list(protocol.NODECLAIM)).items
            want = 3 if kind == "inference" else 1
            assert len(claims) == want, (seed, [c["metadata"]["name"] for c in claims])
            nodes = [
                n
                for n in (await store.list(protocol.NODE)).items
                if n["metadata"]["name"].startswith("node-ws")
            ]
            assert len(nodes) == want, seed
            revisions = (await store.list(protocol.CONTROLLER_REVISION, "default")).items
            assert len({r["revision"] for r in revisions}) == len(revisions), seed
            workload = protocol.DEPLOYMENT if kind == "inference" else protocol.JOB
            assert len((await store.list(workload, "default")).items) == 1, seed
            ws = await store.get(protocol.WORKSPACE, "ws")
            done = "WorkspaceSucceeded" if kind == "inference" else "JobStarted"
            assert conditions(ws)[done][0] == "True", (seed, conditions(ws))
            ws_events = Counter(e["reason"] for e in (await store.list(protocol.EVENT, "default")).items)
            assert ws_events["NodeClaimCreated"] <= want, seed  # one event (kind) per NodeClaim name

            # Deletion, with a crash in the middle too.
            await store.delete(protocol.WORKSPACE, "ws", "default")
            await _delete_with_crash(store, kubelet, rng)
            assert (await store.list(protocol.NODECLAIM)).items == [], seed
            with pytest.raises(errors.NotFound):
                await store.get(protocol.WORKSPACE, "ws")
        finally:
            await store.close()
    assert crashes >= len(SEEDS) // 2  # the crash points really were inside the reconciles


async def _delete_with_crash(store: LocalCluster, kubelet: FakeKubelet, rng: random.Random) -> None:
    try:
        await Reconciler(CountingCluster(store, crash_after=rng.randint(0, 3)), Settings()).reconcile(KEY)
    except Crash:
        pass
    rec = Reconciler(CountingCluster(store), Settings())
    for _ in range(5):
        await rec.reconcile(KEY)
        await kubelet.provision()
