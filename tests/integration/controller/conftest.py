"""Fixtures for controller tests: the same scenarios on both `Cluster` homes.

`cluster` is parametrized: `local` (the SQLite store) and `kube` (`KubeCluster` over real HTTP
against the kmock-based API emulator of `tests.support.kube_emulator`). Either way it is wrapped
to count writes; the fake kubelet writes around the counter. Async fixtures live in the test's
own event loop: the emulator's HTTP server must run in the loop the test awaits in.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from kaito.cluster.local import LocalCluster
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings
from tests.integration.controller.harness import CountingCluster
from tests.support.kube_emulator import serve_emulator
from tests.support.kubelet import FakeKubelet


@pytest_asyncio.fixture(loop_scope="function")
async def local_cluster(tmp_path):
    cluster = LocalCluster(tmp_path / "cluster.db", poll_interval=0.02)
    yield cluster
    await cluster.close()


@pytest_asyncio.fixture(loop_scope="function")
async def emulated():
    async with serve_emulator() as env:
        yield env


@pytest_asyncio.fixture(loop_scope="function", params=["local", "kube"])
async def cluster(request, tmp_path):
    if request.param == "local":
        inner = LocalCluster(tmp_path / "cluster.db", poll_interval=0.02)
        try:
            yield CountingCluster(inner)
        finally:
            await inner.close()
    else:
        async with serve_emulator() as env:
            yield CountingCluster(env.cluster)


@pytest.fixture
def kubelet(cluster):
    return FakeKubelet(cluster.inner)


@pytest.fixture
def make_reconciler(cluster):
    def make(**settings) -> Reconciler:
        return Reconciler(cluster, Settings(pending_requeue_s=0.05, **settings))

    return make
