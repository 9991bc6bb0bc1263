"""Operator processes against the API emulator: real `kaito operator` subprocesses over HTTP.

The emulator (`tests.support.kube_emulator`) runs in the test's event loop on 127.0.0.1; each
operator is a separate Python process started with a kubeconfig pointing at it, so leader
election, SIGTERM and SIGKILL are exercised for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import kmock
import pytest_asyncio
import yaml
from lightkube import KubeConfig

from kaito.cluster.kube import KubeCluster
from tests.support.kube_emulator import KaitoKubeEmulator, server_config

NAMESPACE = "kaito-system"
FAST_LEASE = ["--lease-duration", "2", "--renew-deadline", "1.5", "--retry-period", "0.2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OperatorProcess:
    name: str
    proc: asyncio.subprocess.Process
    metrics_port: int
    probe_port: int
    log: Path

    async def metrics(self) -> str:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text

    async def probe(self, path: str) -> int:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{self.probe_port}{path}")).status_code

    async def reconciles(self) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for family in text_string_to_metric_families(await self.metrics()):
            if family.name == "controller_runtime_reconcile":
                total += sum(s.value for s in family.samples if s.name.endswith("_total"))
        return total


@dataclass
class Env:
    emulator: KaitoKubeEmulator
    cluster: KubeCluster
    kubeconfig: Path
    tmp: Path
    processes: list[OperatorProcess] = field(default_factory=list)

    async def start_operator(self, name: str, *extra: str) -> OperatorProcess:
        metrics_port, probe_port = free_port(), free_port()
        log = self.tmp / f"{name}.log"
        args = [sys.executable, "-m", "kaito.cli.main", "operator", "--kubeconfig", str(self.kubeconfig),
                "--identity", name, "--lease-namespace", NAMESPACE, "--no-webhook",
                "--metrics-bind-address", f"127.0.0.1:{metrics_port}",
                "--health-probe-bind-address", f"127.0.0.1:{probe_port}", *extra]
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(*args, stdout=out, stderr=out,
                                                        env={**os.environ, "KUBECONFIG": str(self.kubeconfig)})
        op = OperatorProcess(name, proc, metrics_port, probe_port, log)
        self.processes.append(op)
        return op

    async def wait_serving(self, op: OperatorProcess, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if op.proc.returncode is not None:
                raise AssertionError(f"{op.name} exited {op.proc.returncode}:\n{op.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if await op.probe("/healthz") == 200:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{op.name} never served /healthz:\n{op.log.read_text()}")


@pytest_asyncio.fixture(loop_scope="function")
async def env(tmp_path):
    async with KaitoKubeEmulator() as emulator, kmock.Server(emulator) as server:
        config = server_config(str(server.url))
        kubeconfig = tmp_path / "kubeconfig.yaml"
        kubeconfig.write_text(yaml.safe_dump(config))
        cluster = KubeCluster(KubeConfig.from_dict(config).get(), retry_base_s=0.01, retry_cap_s=0.05)
        e = Env(emulator, cluster, kubeconfig, tmp_path)
        try:
            yield e
        finally:
            for op in e.processes:
                if op.proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        op.proc.send_signal(signal.SIGKILL)
                    await op.proc.wait()
            await cluster.close()
