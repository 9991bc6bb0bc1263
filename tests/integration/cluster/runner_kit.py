"""What the local pod runner's tests share: a store with one Ready local node and a running runner,
workload builders, and a poll helper. Containers run `python -c` scripts under our runtime image's
name; no model is involved."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kaito.cluster.local import LocalCluster, processes
from kaito.cluster.local.provisioner import LocalProvisioner, MachineFacts
from kaito.cluster.local.runner import LocalRunner

IMAGE = "mcr.microsoft.com/aks/kaito/kaito-runtime:0.1.0"
SERVER = ("import sys, http.server\n"
          "port = int(sys.argv[1].split('=')[1])\n"
          "http.server.HTTPServer(('127.0.0.1', port), http.server.SimpleHTTPRequestHandler).serve_forever()\n")
AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "apps", "operator": "In", "values": ["t"]}]}]}}}


def is_runtime(image: str) -> bool:
    return "kaito-runtime" in image


async def until(what, probe, timeout=30.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def settled(value):
    """`value` as an awaitable, for `until` probes that need no I/O."""
    return value


def workload(kind: str, name: str, containers: list, **spec) -> dict:
    api = "batch/v1" if kind == "Job" else "apps/v1"
    pod_spec = {"containers": containers, "affinity": AFFINITY, **spec.pop("pod", {})}
    body = {"template": {"metadata": {"labels": {"kaito.sh/workspace": name}}, "spec": pod_spec}, **spec}
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "default"}, "spec": body}


async def add_local_node(cluster: LocalCluster, provisioner: LocalProvisioner | None = None) -> LocalProvisioner:
    """NodeClaim `c-0` (label apps=t) and its Ready local node."""
    provisioner = provisioner or LocalProvisioner(cluster, MachineFacts("host", 2, 2**30))
    await cluster.apply({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                         "metadata": {"name": "c-0", "labels": {"apps": "t"}}, "spec": {"requirements": []}})
    await provisioner.sync()
    return provisioner


@contextlib.asynccontextmanager
async def runner_env(tmp_path: Path) -> AsyncIterator[tuple[LocalCluster, LocalRunner, Path]]:
    """(store, running runner, its home) with one Ready node; afterwards the runner is stopped,
    the store closed, and no pod process may be left behind."""
    cluster = LocalCluster(tmp_path / "store.db", poll_interval=0.02)
    await add_local_node(cluster)
    runner = LocalRunner(cluster, tmp_path / "home", is_runtime_image=is_runtime, resync_s=0.3)
    task = asyncio.create_task(runner.run())
    yield cluster, runner, tmp_path / "home"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await cluster.close()
    assert processes.find_strays(tmp_path / "home") == {}
