"""A damaged or inaccessible local store is one typed error naming the file; snapshots restore it.

Real damage on real files: pages of a store overwritten with garbage, a 0-byte file, a text file,
a folder, another program's SQLite database, a file the user cannot read (checked as an
unprivileged user in a child process, since root reads anything), a `KAITO_HOME` that is a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kaito.cluster import errors
from kaito.cluster.local import LocalCluster, snapshots, storefile
from kaito.cluster.local.store import ObjectStore
from kaito.cluster.protocol import WORKSPACE
from tests.integration.cluster.builders import make_workspace
from tests.support.privileges import without_root_file_rights

REPO = Path(__file__).resolve().parents[3]


async def _store_with(path: Path, names: list[str]) -> None:
    cluster = LocalCluster(path)
    try:
        for name in names:
            await cluster.apply(make_workspace(name))
    finally:
        await cluster.close()


def _corrupt_pages(path: Path) -> None:
    """Garbage over part of every seventh page past the first few: b-tree pages no longer parse."""
    size = path.stat().st_size
    assert size > 16 * 4096, "the store is too small to damage meaningfully"
    with open(path, "r+b") as f:
        for page in range(3, size // 4096, 7):
            f.seek(page * 4096 + 100)
            f.write(b"\xde\xad\xbe\xef" * 64)


def _assert_one_line_naming(exc: errors.LocalStateError, path: Path) -> None:
    assert exc.path == str(path)
    assert str(path) in str(exc) and "\n" not in str(exc)


async def _names(path: Path) -> set[str]:
    cluster = LocalCluster(path)
    try:
        return {w["metadata"]["name"] for w in (await cluster.list(WORKSPACE)).items}
    finally:
        await cluster.close()


def _other_programs_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()


@pytest.mark.parametrize("damage,words", [
    (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
    (lambda p: p.write_text("apiVersion: v1\nkind: Workspace\n" * 50), "not an SQLite database"),
    (lambda p: p.mkdir(), "a folder"),
    (_other_programs_db, "not a kaito store"),
], ids=["zero-bytes", "text-file", "folder", "foreign-sqlite"])
def test_a_file_that_is_not_a_store_is_damage_not_an_empty_cluster(tmp_path, damage, words):
    path = tmp_path / "store.db"
    damage(path)
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(errors.StoreDamaged) as caught:
        LocalCluster(path)
    _assert_one_line_naming(caught.value, path)
    assert words in str(caught.value) and "kaito store reset" in str(caught.value)
    assert (path.read_bytes() if path.is_file() else None) == before  # left as it was, never "repaired"


async def test_corrupt_pages_are_found_at_open(tmp_path):
    path = tmp_path / "store.db"
    await _store_with(path, [f"ws-{i}" for i in range(300)])
    _corrupt_pages(path)
    with pytest.raises(errors.StoreDamaged) as caught:
        LocalCluster(path)
    _assert_one_line_naming(caught.value, path)
    assert "integrity check" in str(caught.value)


async def test_a_store_from_a_newer_kaito_is_refused(tmp_path):
    path = tmp_path / "store.db"
    await _store_with(path, ["a"])
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={storefile.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(errors.StoreDamaged, match="newer than this kaito reads"):
        LocalCluster(path)


async def test_a_store_made_before_the_marks_is_adopted(tmp_path):
    path = tmp_path / "store.db"
    db = sqlite3.connect(path, isolation_level=None)  # the file as earlier versions made it
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(storefile.SCHEMA)
    db.close()
    await _store_with(path, ["old"])
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == storefile.APPLICATION_ID
    db.close()
    assert await _names(path) == {"old"}


def test_kaito_home_that_is_a_file_is_one_error_naming_it(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a folder")
    with pytest.raises(errors.StateNotAccessible) as caught:
        LocalCluster(home / "store.db")
    _assert_one_line_naming(caught.value, home)


_PROBE = """
import json, sys
from kaito.cluster import errors
from kaito.cluster.local import LocalCluster
try:
    LocalCluster(sys.argv[1])
    print(json.dumps({"error": None}))
except errors.LocalStateError as exc:
    print(json.dumps({"error": type(exc).__name__, "path": exc.path, "message": str(exc)}))
"""


def _open_as_unprivileged(path: Path) -> dict:
    """Open the store in a child process without root's right to read and write anything."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, timeout=60,
                          preexec_fn=without_root_file_rights, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


async def test_unreadable_store_and_read_only_home_are_one_error_naming_the_path(tmp_path):
    path = tmp_path / "store.db"
    await _store_with(path, ["a"])
    path.chmod(0o000)
    answer = _open_as_unprivileged(path)
    assert answer["error"] == "StateNotAccessible" and answer["path"] == str(path)
    assert str(path) in answer["message"] and "\n" not in answer["message"]

    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o555)  # no store yet, and no right to make one
    answer = _open_as_unprivileged(readonly / "store.db")
    assert answer["error"] == "StateNotAccessible" and answer["path"] == str(readonly)


async def test_snapshot_restores_the_last_good_state(tmp_path):
    path = tmp_path / "store.db"
    await _store_with(path, [f"ws-{i}" for i in range(300)])
    first = snapshots.take_snapshot(path)
    assert first is not None and snapshots.take_snapshot(path) is None  # nothing changed since
    await _store_with(path, ["late"])
    second = snapshots.take_snapshot(path)
    assert [s.path for s in snapshots.list_snapshots(path)] == [second.path, first.path]
    before = await _names(path)
    old_rv = second.resource_version

    _corrupt_pages(path)
    with pytest.raises(errors.StoreDamaged) as caught:
        LocalCluster(path)
    assert str(second.path) in str(caught.value)  # the error points at the snapshot to restore

    restored, aside = snapshots.restore_snapshot(path)
    assert restored == second and aside is not None and aside.is_file()
    assert aside.read_bytes()[:16] == b"SQLite format 3\x00"  # the damaged file is kept, renamed
    assert await _names(path) == before
    cluster = LocalCluster(path)
    try:
        with pytest.raises(errors.Gone):  # a watch from before the restore re-lists
            await anext(aiter(cluster.watch(WORKSPACE, resource_version=str(old_rv))))
        made = await cluster.apply(make_workspace("after"))
        assert int(made["metadata"]["resourceVersion"]) > old_rv
    finally:
        await cluster.close()


async def test_snapshots_rotate_and_damaged_state_never_enters_them(tmp_path):
    path = tmp_path / "store.db"
    for i in range(4):
        await _store_with(path, [f"ws-{i}"])
        snapshots.take_snapshot(path, keep=2)
    kept = snapshots.list_snapshots(path)
    assert len(kept) == 2 and kept[0].resource_version > kept[1].resource_version
    path.write_bytes(b"")
    with pytest.raises(errors.StoreDamaged):
        snapshots.take_snapshot(path, keep=2)
    assert snapshots.list_snapshots(path) == kept


async def test_reset_sets_the_damaged_store_aside_and_starts_empty(tmp_path):
    path = tmp_path / "store.db"
    path.write_text("garbage")
    backup = snapshots.backup_store(path, tmp_path / "keep" / "store-copy.db")
    assert backup.read_text() == "garbage"  # a damaged store is backed up as it is
    aside = snapshots.reset_store(path)
    assert aside is not None and aside.read_text() == "garbage"
    assert await _names(path) == set()


async def test_snapshots_are_consistent_while_another_process_writes(tmp_path):
    path = tmp_path / "store.db"
    await _store_with(path, ["seed"])
    writer = subprocess.Popen([sys.executable, "-c", (
        "import asyncio, sys\n"
        "from kaito.cluster.local import LocalCluster\n"
        "from tests.integration.cluster.builders import make_workspace\n"
        "async def main():\n"
        "    c = LocalCluster(sys.argv[1])\n"
        "    for i in range(400):\n"
        "        await c.apply(make_workspace(f'w-{i}'))\n"
        "    await c.close()\n"
        "asyncio.run(main())\n"), str(path)], cwd=REPO)
    taken = []
    try:
        while writer.poll() is None and len(taken) < 30:
            snap = snapshots.take_snapshot(path, keep=50)
            if snap is not None:
                taken.append(snap)
    finally:
        assert writer.wait(timeout=120) == 0
    assert taken
    for snap in taken:
        # Each write here creates one object and takes one resourceVersion: a torn copy would differ.
        store = ObjectStore(snap.path, check="full")
        try:
            items, rv = store.list(WORKSPACE, None, None)
        finally:
            store.close()
        assert len(items) == int(rv) == snap.resource_version


def test_store_errors_met_later_are_translated_once(tmp_path):
    path = tmp_path / "not-a-store"
    path.write_text("x" * 200)
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError) as raw:
        db.execute("SELECT 1 FROM sqlite_master").fetchall()
    db.close()
    assert isinstance(storefile.translate_error(raw.value, path), errors.StoreDamaged)


_CHILD_WRITE = """
import asyncio, sys
from kaito.cluster.local import LocalCluster
from tests.integration.cluster.builders import make_workspace

async def main():
    cluster = LocalCluster(sys.argv[1])
    await cluster.apply(make_workspace(sys.argv[2]))
    print("written", flush=True)
    sys.stdin.readline()  # stays open (its write not yet checkpointed) until told to go
    await cluster.close()

asyncio.run(main())
"""


def _child_write(path: Path, name: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", _CHILD_WRITE, str(path), name], cwd=REPO, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdout.readline() == "written\n"
    return child


def _release(child: subprocess.Popen) -> None:
    child.communicate("go\n", timeout=60)
    assert child.returncode == 0


async def test_checking_the_file_keeps_the_locks_of_connections_already_open(tmp_path):
    """Opening the store a second time in a process (the CLI and the control plane do) must not drop
    the first connections' locks: another process closing its connection would then think itself
    the last one and delete the WAL under them, and they would never see a write again."""
    path = tmp_path / "store.db"
    first = LocalCluster(path)
    second = LocalCluster(path, check="full")
    try:
        _release(_child_write(path, "from-child-1"))  # opens, writes and closes: the last one out?
        lingering = _child_write(path, "from-child-2")  # its write sits in the WAL while it runs
        try:
            for cluster in (first, second):
                names = {w["metadata"]["name"] for w in (await cluster.list(WORKSPACE)).items}
                assert names == {"from-child-1", "from-child-2"}
        finally:
            _release(lingering)
    finally:
        await second.close()
        await first.close()


async def test_keep_snapshots_takes_one_at_start_then_on_change_and_outlives_damage(tmp_path, caplog):
    path = tmp_path / "store.db"
    await _store_with(path, ["a"])

    async def until(what, probe):
        for _ in range(400):
            if probe():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    keeper = asyncio.create_task(snapshots.keep_snapshots(path, every_s=0.05, keep=2))
    try:
        await until("the start snapshot", lambda: len(snapshots.list_snapshots(path)) == 1)
        for name in ("b", "c"):
            await _store_with(path, [name])
            rv = snapshots.list_snapshots(path)[0].resource_version
            await until(f"a snapshot with {name}", lambda rv=rv: snapshots.list_snapshots(path)[0].resource_version > rv)
        await until("the rotation to keep two", lambda: len(snapshots.list_snapshots(path)) == 2)
        kept = snapshots.list_snapshots(path)
        path.write_bytes(b"")
        await until("the damage to be logged", lambda: "store snapshot skipped" in caplog.text)
        assert not keeper.done() and snapshots.list_snapshots(path) == kept
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
