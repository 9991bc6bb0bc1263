"""Fixtures for controller tests: a cluster per backend, the fake kubelet, a reconciler."""

from __future__ import annotations

import pytest

from kaito.cluster.local import LocalCluster
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings
from tests.integration.controller.harness import CountingCluster
from tests.support.kubelet import FakeKubelet


@pytest.fixture
async def local_cluster(tmp_path):
    cluster = LocalCluster(tmp_path / "cluster.db", poll_interval=0.02)
    yield cluster
    await cluster.close()


@pytest.fixture
async def cluster(local_cluster):
    """The cluster under test, wrapped to count writes (the kube backend is added in test_kube)."""
    return CountingCluster(local_cluster)


@pytest.fixture
def kubelet(cluster):
    return FakeKubelet(cluster.inner)


@pytest.fixture
def make_reconciler(cluster):
    def make(**settings) -> Reconciler:
        return Reconciler(cluster, Settings(pending_requeue_s=0.05, **settings))

    return make
