"""Snapshots of the local store, so a damaged one can be restored; backup, reset and restore.

Snapshots are taken with SQLite's online backup API (`Connection.backup`), which copies a
consistent state while other processes keep writing, checked (`quick_check`) before they count,
and rotated: the newest `keep` stay in `<store dir>/snapshots/`, named
`store-<UTC time>-rv<resourceVersion>.db` so that their order and content age show in a listing.
A snapshot is skipped when nothing was written since the newest one.

`reset_store` and `restore_snapshot` never delete the store they replace: it is renamed aside
(`store.db.damaged-<time>`, with its WAL files). They must run while no control plane uses the
store (the caller checks its lock). A restored store starts its resourceVersion past both the
snapshot's and the replaced store's (when that one can still be read), and its watch history
empty, so a watch from before the restore gets `Gone` and re-lists rather than missing changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kaito.cluster import errors
from kaito.cluster.local import storefile

log = logging.getLogger(__name__)

KEEP = 5
SNAPSHOT_EVERY_S = 600.0
_STAMP = "%Y%m%dT%H%M%S.%fZ"
_SIDE_FILES = ("-wal", "-shm")


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    path: Path
    taken_at: datetime
    resource_version: int


def snapshots_dir(store: Path) -> Path:
    return Path(store).parent / storefile.SNAPSHOT_DIR


def _parse(path: Path) -> Snapshot | None:
    stem = path.name.removesuffix(".db")
    prefix, _, rest = stem.partition("-")
    stamp, _, rv = rest.rpartition("-rv")
    try:
        taken = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    if prefix != "store" or not rv.isdigit() or not path.name.endswith(".db"):
        return None
    return Snapshot(path=path, taken_at=taken, resource_version=int(rv))


def list_snapshots(store: Path) -> list[Snapshot]:
    """The snapshots of `store`, newest first."""
    folder = snapshots_dir(store)
    if not folder.is_dir():
        return []
    found = [s for s in (_parse(p) for p in folder.glob("store-*.db")) if s is not None]
    return sorted(found, key=lambda s: s.taken_at, reverse=True)


def _copy_online(source: sqlite3.Connection, target: Path) -> None:
    """A consistent copy of `source` into the new file `target` (SQLite's online backup)."""
    dest = sqlite3.connect(target, isolation_level=None)
    try:
        source.backup(dest)
        dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no WAL beside it
    finally:
        dest.close()


def take_snapshot(store: Path, *, keep: int = KEEP) -> Snapshot | None:
    """Snapshot `store` now, unless nothing changed since the newest snapshot (then None).

    Raises `StoreDamaged` for a store that fails its check: a damaged state never becomes a
    snapshot, nor pushes a good one out of the rotation."""
    store = Path(store)
    if not store.exists():
        return None
    folder = snapshots_dir(store)
    storefile.ensure_dir(folder)
    source = storefile.connect(store, check="quick")
    try:
        rv = source.execute("SELECT value FROM counters WHERE key='rv'").fetchone()[0]
        newest = next(iter(list_snapshots(store)), None)
        if newest is not None and newest.resource_version == rv:
            return None
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".snapshot-", suffix=".db")
        os.close(fd)
        try:
            _copy_online(source, Path(tmp))
            check = storefile.connect(Path(tmp), check="quick", readonly=True)
            try:
                taken_rv = check.execute("SELECT value FROM counters WHERE key='rv'").fetchone()[0]
            finally:
                check.close()
            taken = datetime.now(UTC)
            final = folder / f"store-{taken.strftime(_STAMP)}-rv{taken_rv}.db"
            os.replace(tmp, final)
        except (sqlite3.Error, OSError) as exc:
            raise storefile.not_accessible(folder, f"snapshot failed: {exc}") from None
        finally:
            _remove_with_side_files(Path(tmp))
    finally:
        source.close()
    for old in list_snapshots(store)[max(1, keep):]:
        _remove_with_side_files(old.path)
    return Snapshot(path=final, taken_at=taken, resource_version=taken_rv)


def _remove_with_side_files(path: Path) -> None:
    for item in (path, *(Path(f"{path}{s}") for s in _SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            item.unlink()


def backup_store(store: Path, dest: Path) -> Path:
    """A copy of `store` at `dest`: consistent (online backup) when the store is sound, else the raw
    file and its WAL side files as they are, so even a damaged store can be kept for later."""
    store, dest = Path(store), Path(dest)
    if dest.exists():
        raise errors.LocalStateError(f"backup target {dest} already exists; choose a new name", path=dest)
    storefile.ensure_dir(dest.parent)
    try:
        source = storefile.connect(store, check="quick")
    except errors.StoreDamaged:
        try:
            shutil.copy2(store, dest)
            for suffix in _SIDE_FILES:
                if Path(f"{store}{suffix}").is_file():
                    shutil.copy2(f"{store}{suffix}", f"{dest}{suffix}")
        except OSError as exc:
            raise storefile.not_accessible(dest, exc.strerror or str(exc)) from None
        return dest
    try:
        _copy_online(source, dest)
    except (sqlite3.Error, OSError) as exc:
        raise storefile.not_accessible(dest, f"backup failed: {exc}") from None
    finally:
        source.close()
    return dest


def _set_aside(store: Path) -> Path | None:
    """Rename the store (and its WAL side files) to `<name>.damaged-<time>`; None when there is none."""
    if not store.exists() and not store.is_symlink():
        return None
    aside = store.with_name(f"{store.name}.damaged-{datetime.now(UTC).strftime(_STAMP)}")
    try:
        for suffix in _SIDE_FILES:
            if Path(f"{store}{suffix}").exists():
                os.replace(f"{store}{suffix}", f"{aside}{suffix}")
        os.replace(store, aside)
    except OSError as exc:
        raise storefile.not_accessible(store, f"cannot set it aside: {exc.strerror or exc}") from None
    return aside


def reset_store(store: Path) -> Path | None:
    """Set the store aside (kept, renamed) and start an empty one; returns where the old one went."""
    store = Path(store)
    aside = _set_aside(store)
    storefile.create(store)
    return aside


def _readable_rv(store: Path) -> int:
    """The resourceVersion counter of a store that may be damaged (0 when it cannot be read)."""
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT value FROM counters WHERE key='rv'").fetchone()[0])
        finally:
            db.close()
    except (sqlite3.Error, OSError, TypeError, ValueError):
        return 0


def restore_snapshot(store: Path, snapshot: Path | None = None) -> tuple[Snapshot | Path, Path | None]:
    """Replace the store by `snapshot` (default: the newest sound one); the old store is set aside.

    Returns (what was restored, where the replaced store went)."""
    store = Path(store)
    candidates = [Path(snapshot)] if snapshot is not None else [s.path for s in list_snapshots(store)]
    if not candidates:
        raise errors.LocalStateError(f"no snapshot of {store} in {snapshots_dir(store)} to restore", path=store)
    chosen, problems = None, []
    for path in candidates:
        try:
            source = storefile.connect(path, check="full", readonly=True)
        except errors.LocalStateError as exc:
            problems.append(str(exc))
            continue
        chosen = (path, source)
        break
    if chosen is None:
        raise errors.LocalStateError(f"no sound snapshot to restore: {'; '.join(problems)}", path=candidates[0])
    path, source = chosen
    fd, tmp = tempfile.mkstemp(dir=store.parent, prefix=f".{store.name}.restore-")
    os.close(fd)
    try:
        _copy_online(source, Path(tmp))
        floor = max(_readable_rv(store), int(source.execute("SELECT value FROM counters WHERE key='rv'")
                                                  .fetchone()[0])) + 1
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.executescript(f"BEGIN IMMEDIATE; DELETE FROM events; UPDATE counters SET value={floor}; COMMIT;"
                             "PRAGMA journal_mode=WAL;")
        finally:
            db.close()
        aside = _set_aside(store)
        os.replace(tmp, store)
    except (sqlite3.Error, OSError) as exc:
        raise storefile.not_accessible(store, f"restore failed: {exc}") from None
    finally:
        source.close()
        _remove_with_side_files(Path(tmp))
    return (_parse(path) or path), aside


async def keep_snapshots(store: Path, *, every_s: float = SNAPSHOT_EVERY_S, keep: int = KEEP) -> None:
    """Until cancelled: a snapshot now (the control plane's start) and every `every_s` seconds when
    the store changed. Failures are logged, never raised: snapshots must not stop the control plane."""
    while True:
        try:
            taken = await asyncio.to_thread(take_snapshot, store, keep=keep)
            if taken is not None:
                log.info("store snapshot %s (resourceVersion %d)", taken.path, taken.resource_version)
        except errors.ClusterError as exc:
            log.warning("store snapshot skipped: %s", exc)
        await asyncio.sleep(every_s)
