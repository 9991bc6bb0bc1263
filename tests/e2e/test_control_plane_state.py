"""e2e: the store and the control plane are honest at the CLI.

- a damaged store (random bytes, 0 bytes) makes `kaito up --detach` exit 1 with the one-line reason,
  not "up"; a `KAITO_HOME` that is a file, or a folder nobody may write, is one line in every command;
- once the control plane dies, every command knows it: `kaito get` marks the status stale,
  `kaito describe` says so, `kaito delete` returns at once with a clear message (nothing deleted),
  `kaito apply` refuses, and `kaito apply --wait` stops waiting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.e2e.conftest import wait_for, workspace_yaml
from tests.support.privileges import without_root_file_rights

COMMANDS = [
    ("up", "--detach"), ("up", "--no-table"), ("get", "workspaces"), ("describe", "workspace", "x"),
    ("delete", "workspace", "x"), ("apply", "-f", "{manifest}"), ("logs", "x"), ("endpoint", "x"),
    ("chat", "x", "hi"), ("ui", "x", "--no-browser"), ("dashboard", "--no-browser"), ("store", "check"),
    ("store", "snapshots"), ("store", "snapshot"), ("store", "reset", "--yes"), ("store", "restore"),
]


def _one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1, result.stderr
    assert all(w in lines[0] for w in words), lines[0]


def _run(kaito, *args: str, home, preexec=None) -> subprocess.CompletedProcess:
    env = {**kaito.env, "KAITO_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "kaito.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=preexec)


def test_a_bad_home_is_one_line_in_every_command(kaito, tiny_model):
    manifest = kaito.write("tiny.yaml", workspace_yaml("x", tiny_model.repo_id))
    home = kaito.home.parent / "home-is-a-file"
    home.write_text("not a folder")
    for command in COMMANDS:
        args = [a.format(manifest=manifest) for a in command]
        _one_line_error(_run(kaito, *args, home=home), str(home))

    readonly = kaito.home.parent / "readonly-home"
    readonly.mkdir(mode=0o555)
    for args in (("up", "--detach"), ("up", "--no-table")):
        _one_line_error(_run(kaito, *args, home=readonly / "kaito", preexec=without_root_file_rights),
                        str(readonly), "cannot use")


@pytest.mark.parametrize("damage", ["random bytes", "empty file"])
def test_a_damaged_store_stops_kaito_up_with_its_reason(kaito, damage):
    kaito.home.mkdir(parents=True)
    store = kaito.home / "store.db"
    store.write_bytes(os.urandom(8192) if damage == "random bytes" else b"")
    started = kaito("up", "--detach", timeout=90)
    _one_line_error(started, str(store), "is damaged", "kaito store restore")
    assert "up (pid" not in started.stdout
    assert kaito.control_plane_pid() is None and kaito.pod_processes() == {}
    _one_line_error(kaito("up", "--no-table", timeout=90), str(store), "is damaged")
    _one_line_error(kaito("get", "workspaces"), str(store), "is damaged")


def _kill_plane(kaito) -> None:
    os.kill(kaito.control_plane_pid(), signal.SIGKILL)
    wait_for("the killed plane's lock to be released", lambda: kaito.control_plane_pid() is None, timeout=15)


def test_commands_know_when_the_control_plane_is_dead(local_cluster, tiny_model):
    kaito = local_cluster
    manifest = kaito.write("tiny.yaml", workspace_yaml("tiny", tiny_model.repo_id))
    ready = kaito("apply", "-f", manifest, "--wait", "--timeout", "180", timeout=200)
    assert ready.returncode == 0, ready.stderr
    fresh = kaito("get", "workspaces", check=True)
    assert "STALE" not in fresh.stdout and "stale" not in fresh.stderr

    _kill_plane(kaito)
    listed = kaito("get", "workspaces", check=True)
    assert "is not running" in listed.stderr and "the status shown is stale" in listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[-1] == "STALE" and row.split()[-1] == "yes"
    described = kaito("describe", "workspace", "tiny", check=True)
    assert "Stale:        yes: the local control plane" in described.stdout

    deleted = kaito("delete", "workspace", "tiny", timeout=60)  # blocked for its whole 120 s timeout before
    _one_line_error(deleted, "is not running", "nothing was deleted")
    assert kaito.workspace("tiny")["metadata"]["name"] == "tiny"
    _one_line_error(kaito("apply", "-f", manifest), "is not running", "nothing was applied")


def test_apply_wait_stops_when_the_control_plane_dies(local_cluster):
    kaito = local_cluster
    # A model that is not in the offline cache: its server can never become ready, so only the
    # plane's death can end this wait before its timeout.
    never = kaito.write("never.yaml", workspace_yaml("never", "falcon-7b").replace(
        "Standard_NC6s_v3", "Standard_NC24ads_A100_v4"))
    waiting = subprocess.Popen([sys.executable, "-m", "kaito.cli.main", "apply", "-f", never, "--wait",
                                "--timeout", "600"], env=kaito.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        lines = iter(waiting.stdout.readline, "")
        assert any("workspace.kaito.sh/never created" in line for line in lines)
        _kill_plane(kaito)
        _, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.communicate()
    assert waiting.returncode == 1
    assert "stopped waiting for workspace never" in err and "is not running" in err and "Traceback" not in err
