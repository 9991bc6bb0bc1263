"""`kaito store` as a user runs it: a damaged store is one line naming it and the way out; a
snapshot restores it; reset starts empty with the damaged file kept; nothing is replaced while a
control plane uses the store."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from typer.testing import CliRunner

from kaito.cli.main import app
from kaito.cluster.local import LocalCluster
from kaito.operator import controlplane
from tests.integration.cluster.builders import make_workspace


def _kaito(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _store_with(path, names) -> None:
    async def fill() -> None:
        cluster = LocalCluster(path)
        try:
            for name in names:
                await cluster.apply(make_workspace(name))
        finally:
            await cluster.close()

    asyncio.run(fill())


def test_a_damaged_store_is_one_line_and_a_snapshot_restores_it(tmp_path):
    home = tmp_path / "home"
    store = controlplane.resolve_paths(home).store
    _store_with(store, ["kept-1", "kept-2"])
    taken = _kaito("store", "snapshot", "--home", str(home))
    assert taken.exit_code == 0 and "snapshots/store-" in taken.output
    assert "kept-1" in _kaito("get", "workspaces", "--home", str(home)).output

    store.write_bytes(b"")  # the 0-byte store of a full disk or an interrupted copy
    broken = _kaito("get", "workspaces", "--home", str(home))
    assert broken.exit_code == 1
    assert broken.output.count("\n") == 1 and str(store) in broken.output and "kaito store restore" in broken.output
    assert _kaito("store", "check", "--home", str(home)).exit_code == 1

    restored = _kaito("store", "restore", "--home", str(home))
    assert restored.exit_code == 0 and "the replaced store is" in restored.output
    assert _kaito("store", "check", "--home", str(home)).output.strip().endswith(": sound")
    listed = _kaito("get", "workspaces", "--home", str(home)).output
    assert "kept-1" in listed and "kept-2" in listed


def test_reset_needs_yes_keeps_the_damaged_file_and_refuses_while_a_control_plane_runs(tmp_path):
    home = tmp_path / "home"
    paths = controlplane.resolve_paths(home)
    home.mkdir()
    paths.store.write_text("not a database")
    assert _kaito("store", "reset", "--home", str(home)).exit_code == 1  # no --yes
    assert paths.store.read_text() == "not a database"

    with open(paths.lockfile, "a+") as lock:  # what a running control plane holds
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        paths.pidfile.write_text(f"{os.getpid()}\n")
        refused = _kaito("store", "reset", "--yes", "--home", str(home))
        assert refused.exit_code == 1 and "kaito down" in refused.output
        assert paths.store.read_text() == "not a database"
    paths.pidfile.unlink()

    backup = _kaito("store", "backup", str(tmp_path / "copy.db"), "--home", str(home))
    assert backup.exit_code == 0 and (tmp_path / "copy.db").read_text() == "not a database"
    done = _kaito("store", "reset", "--yes", "--home", str(home))
    assert done.exit_code == 0 and "the old one is" in done.output
    aside = done.output.rsplit("the old one is ", 1)[1].strip()
    assert Path(aside).read_text() == "not a database"
    assert _kaito("get", "workspaces", "--home", str(home)).exit_code == 0
