"""Fixtures for the cluster contract suite: each backend as a factory-made, isolated instance.

`cluster` is parametrized over the local SQLite store (a file in the test's tmp dir) and the
lightkube backend over real HTTP against `tests.support.kube_emulator` on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import kmock
import pytest_asyncio
from lightkube import KubeConfig

from kaito.cluster.kube import KubeCluster
from kaito.cluster.local import LocalCluster
from tests.support.kube_emulator import KaitoKubeEmulator, server_config


@dataclass
class KubeEnv:
    emulator: KaitoKubeEmulator
    cluster: KubeCluster
    url: str


@pytest_asyncio.fixture(loop_scope="function")
async def kube_env() -> AsyncIterator[KubeEnv]:
    async with KaitoKubeEmulator() as emulator, kmock.Server(emulator) as server:
        config = KubeConfig.from_dict(server_config(str(server.url))).get()
        cluster = KubeCluster(config, retry_base_s=0.01, retry_cap_s=0.05)
        try:
            yield KubeEnv(emulator, cluster, str(server.url))
        finally:
            await cluster.close()


@pytest_asyncio.fixture(loop_scope="function")
async def local_cluster(tmp_path) -> AsyncIterator[LocalCluster]:
    cluster = LocalCluster(tmp_path / "store.db", poll_interval=0.02)
    try:
        yield cluster
    finally:
        await cluster.close()


@dataclass
class Backend:
    """One backend under the contract suite, with the test-only levers each one offers."""

    name: str
    cluster: Any
    compact: Callable[[], Awaitable[Any]]


@pytest_asyncio.fixture(loop_scope="function", params=["local", "kube"])
async def backend(request, tmp_path) -> AsyncIterator[Backend]:
    if request.param == "local":
        local = LocalCluster(tmp_path / "store.db", poll_interval=0.02)
        try:
            yield Backend("local", local, local.compact)
        finally:
            await local.close()
    else:
        async with KaitoKubeEmulator() as emulator, kmock.Server(emulator) as server:
            config = KubeConfig.from_dict(server_config(str(server.url))).get()
            kube = KubeCluster(config, retry_base_s=0.01, retry_cap_s=0.05)

            async def compact() -> None:
                emulator.compact()

            try:
                yield Backend("kube", kube, compact)
            finally:
                await kube.close()
