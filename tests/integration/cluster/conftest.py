"""Fixtures for the cluster contract suite: each backend as a factory-made, isolated instance.

`backend` is parametrized over the local SQLite store (a file in the test's tmp dir) and the
lightkube backend over real HTTP against `tests.support.kube_emulator` on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest_asyncio

from kaito.cluster.local import LocalCluster
from tests.support.kube_emulator import EmulatedCluster, serve_emulator


@pytest_asyncio.fixture(loop_scope="function")
async def kube_env() -> AsyncIterator[EmulatedCluster]:
    async with serve_emulator() as env:
        yield env


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
        async with serve_emulator() as env:

            async def compact() -> None:
                env.emulator.compact()

            yield Backend("kube", env.cluster, compact)
