"""Fixtures for the e2e layer: the `kaito` command run as a user runs it, against a fresh `$KAITO_HOME`.

Every command is a separate `python -m kaito.cli.main` process with the tiny model's offline Hugging
Face cache in its environment; `local_cluster` starts `kaito up --detach` and, whatever the test did,
stops it with `kaito down` and checks that no process of that state directory is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items):
    """Everything here runs whole `kaito` processes: mark it so `-m "not e2e"` can leave it out."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


@dataclass
class Kaito:
    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120, check: bool = False,
                 input: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "kaito.cli.main", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"kaito {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def workspace(self, name: str) -> dict:
        return json.loads(self("get", "workspace", name, "-o", "json", check=True).stdout)

    def pod_processes(self) -> dict[int, str]:
        from kaito.cluster.local.processes import find_strays

        return find_strays(self.home)

    def control_plane_pid(self) -> int | None:
        from kaito.operator.controlplane import Paths, running_pid

        return running_pid(Paths(self.home.resolve()))

    def write(self, name: str, text: str) -> str:
        path = self.home.parent / name
        path.write_text(text)
        return str(path)


@pytest.fixture
def kaito(tmp_path: Path, tiny_model) -> Kaito:
    home = tmp_path / "kaito-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAITO_")}
    env.update(tiny_model.env())
    env["KAITO_HOME"] = str(home)
    return Kaito(home, env)


@pytest.fixture
def local_cluster(kaito: Kaito) -> Iterator[Kaito]:
    kaito("up", "--detach", check=True, timeout=90)
    try:
        yield kaito
    finally:
        kaito("down", timeout=60)
        assert kaito.control_plane_pid() is None
        assert kaito.pod_processes() == {}, "pod processes outlived kaito down"


def wait_for(what: str, probe: Callable[[], object], timeout: float = 120.0, interval: float = 0.3):
    """Poll `probe` until it returns something truthy (not a timed assertion: a bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def workspace_yaml(name: str, model: str, extra: str = "") -> str:
    return f"""apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: {name}
resource:
  instanceType: Standard_NC6s_v3
  labelSelector:
    matchLabels:
      apps: {name}
inference:
  preset:
    name: {model}
{extra}"""
