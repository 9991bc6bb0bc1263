"""e2e: SIGKILL `kaito up` while a Workspace is starting; start it again: the Workspace becomes ready
with exactly one model process (the killed plane's child died with it, nothing is duplicated)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.e2e.conftest import wait_for, workspace_yaml


def _inference_processes(kaito) -> list[int]:
    found = []
    for pid in kaito.pod_processes():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "kaito.runtime.inference" in cmdline:
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
    os.kill(plane, signal.SIGKILL)
    wait_for("the killed plane's model process to die", lambda: not set(first) & set(_inference_processes(kaito)),
             timeout=15)
    wait_for("the killed plane's lock to be released", lambda: kaito.control_plane_pid() is None, timeout=15)

    kaito("up", "--detach", check=True, timeout=90)
    result = kaito("apply", "-f", manifest, "--wait", "--timeout", "180", timeout=200)
    assert result.returncode == 0, result.stderr
    assert "unchanged" in result.stdout
    processes = _inference_processes(kaito)
    assert len(processes) == 1 and processes[0] not in first
    assert kaito("chat", "tiny", "hi", "--max-tokens", "4", check=True).stdout.strip()
