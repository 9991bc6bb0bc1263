"""Crash safety of the InferenceSet controller: kill it before any write of a reconcile (the set's and
its children's), scale the set while it is down, start a new one, and the cluster converges with
exactly the desired children — no name twice, no ordinal twice, none orphaned — and a deletion with
a crash in the middle leaves nothing; two controllers acting on one read (a leader that lost its
Lease finishing a reconcile) create each replica once. On the local store and over HTTP against
the API emulator."""

from __future__ import annotations

import contextlib
import random

import pytest

from kaito.api import inferenceset
from kaito.cluster import errors, protocol
from kaito.cluster.local import LocalCluster
from kaito.manifests import inferenceset as set_manifests
from tests.integration.controller.harness import CountingCluster, Crash, conditions
from tests.integration.controller.set_harness import SET_KEY, SetDriver, children, make_inferenceset, scale
from tests.support.kube_emulator import serve_emulator
from tests.support.kubelet import FakeKubelet

SEEDS = {"local": range(24), "kube": range(8)}


@contextlib.asynccontextmanager
async def fresh_cluster(backend: str, path):
    if backend == "local":
        store = LocalCluster(path, poll_interval=0.02)
        try:
            yield store
        finally:
            await store.close()
    else:
        async with serve_emulator() as env:
            yield env.cluster


async def _run_until_crash(store, kubelet: FakeKubelet, rng: random.Random) -> bool:
    """Controller A: rounds of both reconcilers (the kubelet acting at random) until it crashes;
    the set is scaled at random meanwhile, as an autoscaler would."""
    driver = SetDriver(CountingCluster(store, crash_after=rng.randint(0, 16)), kubelet)
    try:
        for _ in range(10):
            await driver.round(kubelet=rng.random() < 0.6)
            if rng.random() < 0.3:
                await scale(store, rng.randint(0, 3))
    except Crash:
        return True
    return False


async def _check_converged(store, seed: int) -> None:
    stored = await store.get(protocol.INFERENCESET, "chat")
    desired = stored["spec"]["replicas"]
    found = await children(store)
    names = [c["metadata"]["name"] for c in found]
    ordinals = [c["metadata"]["annotations"][set_manifests.ANNOTATION_REPLICA] for c in found]
    assert len(found) == desired, (seed, names)
    assert len(set(ordinals)) == len(ordinals), (seed, ordinals)
    assert all(c["metadata"]["ownerReferences"][0]["uid"] == stored["metadata"]["uid"] for c in found), seed
    assert all(conditions(c)["WorkspaceSucceeded"][0] == "True" for c in found), seed
    every = (await store.list(protocol.WORKSPACE, "default")).items
    assert len(every) == desired, (seed, [w["metadata"]["name"] for w in every])  # no stray Workspace
    assert (stored["status"]["replicas"], stored["status"]["readyReplicas"]) == (desired, desired), seed
    revisions = (await store.list(protocol.CONTROLLER_REVISION, "default",
                                  {inferenceset.LABEL_REVISION_NAME: "chat"})).items
    assert [r["revision"] for r in revisions] == [1], seed  # scaling is not a revision


async def _delete_with_crash(store, kubelet: FakeKubelet, rng: random.Random) -> None:
    await store.delete(protocol.INFERENCESET, "chat", "default")
    with contextlib.suppress(Crash, errors.NotFound):
        await SetDriver(CountingCluster(store, crash_after=rng.randint(0, 4)), kubelet).round()
    survivor = SetDriver(CountingCluster(store), kubelet)
    for _ in range(20):
        if not (await store.list(protocol.INFERENCESET)).items:
            break
        with contextlib.suppress(errors.NotFound):
            await survivor.round()
    for _ in range(5):  # the last children's NodeClaims
        with contextlib.suppress(errors.NotFound):
            await survivor.round()


@pytest.mark.parametrize("backend", ["local", "kube"])
async def test_restart_after_a_crash_anywhere_converges_without_duplicate_children(tmp_path, backend):
    crashes = 0
    for seed in SEEDS[backend]:
        rng = random.Random(seed)
        async with fresh_cluster(backend, tmp_path / f"{seed}.db") as store:
            await store.apply(make_inferenceset(replicas=rng.randint(1, 3)), field_manager="kubectl")
            kubelet = FakeKubelet(store)
            crashes += await _run_until_crash(store, kubelet, rng)
            if rng.random() < 0.5:  # scaled while no controller ran
                await scale(store, rng.randint(0, 3))
            await SetDriver(CountingCluster(store), kubelet).settle()
            await _check_converged(store, seed)

            await _delete_with_crash(store, kubelet, rng)
            assert (await store.list(protocol.INFERENCESET)).items == [], seed
            assert (await store.list(protocol.WORKSPACE)).items == [], seed
            assert (await store.list(protocol.NODECLAIM)).items == [], seed
    assert crashes >= len(SEEDS[backend]) // 2  # the crash points really were inside the reconciles


@pytest.mark.parametrize("backend", ["local", "kube"])
async def test_two_controllers_acting_on_the_same_read_make_no_duplicates(tmp_path, backend):
    """A leader that lost its Lease may finish a reconcile while the new leader runs one: both read one
    child and want three. Names computed from (set uid, ordinal) make their creations the same two
    objects; random names (KAITO's generateName) would leave five."""
    from datetime import UTC, datetime

    from kaito.catalog.facts import build_catalog_facts
    from kaito.controller.inferenceset.observe import observe_inferenceset
    from kaito.controller.inferenceset.plan import plan_inferenceset
    from kaito.controller.inferenceset.reconciler import execute_set_plan
    from tests.integration.controller.set_harness import SETTINGS

    async with fresh_cluster(backend, tmp_path / "store.db") as store:
        await store.apply(make_inferenceset(replicas=1), field_manager="kubectl")
        kubelet = FakeKubelet(store)
        await SetDriver(store, kubelet).settle()
        await scale(store, 3)
        seen = await observe_inferenceset(store, SET_KEY, gateway_on=False)
        facts, now = build_catalog_facts(), datetime.now(UTC)
        plans = [plan_inferenceset(seen, SETTINGS, facts, now) for _ in range(2)]
        assert all(len(p.create) == 2 and p.set_patch is None for p in plans)
        for plan in plans:
            await execute_set_plan(store, seen.inference_set, plan)
        assert len(await children(store)) == 3
        await SetDriver(store, kubelet).settle()
        assert len(await children(store)) == 3
