"""e2e: SIGKILL `kaito up` while a Workspace is starting; start it again: the Workspace becomes ready
with exactly one model server and its engine process (the killed plane's children died with it,
nothing is duplicated)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.e2e.conftest import wait_for, workspace_yaml


def _inference_processes(kaito, engines: bool = False) -> list[int]:
    """The pods' model servers (or, with `engines`, their engine processes: one per server)."""
    found = []
    for pid in kaito.pod_processes():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "kaito.runtime.inference" in cmdline and ("engine_worker" in cmdline) == engines:
            found.append(pid)
    return found


def test_control_plane_killed_while_starting(local_cluster, tiny_model):
    kaito = local_cluster
    manifest = kaito.write("tiny.yaml", workspace_yaml("tiny", tiny_model.repo_id))
    kaito("apply", "-f", manifest, check=True)
    first = wait_for("the model process to start", lambda: _inference_processes(kaito), timeout=90, interval=0.1)
    conditions = {c["type"]: c["status"] for c in kaito.workspace("tiny")["status"]["conditions"]}
    assert conditions.get("InferenceReady") != "True"  # still starting when the plane dies

    plane = kaito.control_plane_pid()
    everything = set(first) | set(_inference_processes(kaito, engines=True))
    os.kill(plane, signal.SIGKILL)
    wait_for("the killed plane's model processes to die", lambda: not everything & (
        set(_inference_processes(kaito)) | set(_inference_processes(kaito, engines=True))), timeout=15)
    wait_for("the killed plane's lock to be released", lambda: kaito.control_plane_pid() is None, timeout=15)

    kaito("up", "--detach", check=True, timeout=90)
    result = kaito("apply", "-f", manifest, "--wait", "--timeout", "180", timeout=200)
    assert result.returncode == 0, result.stderr
    assert "unchanged" in result.stdout
    processes = _inference_processes(kaito)
    assert len(processes) == 1 and processes[0] not in first
    assert len(_inference_processes(kaito, engines=True)) == 1  # the server's own engine process
    assert kaito("chat", "tiny", "hi", "--max-tokens", "4", check=True).stdout.strip()
