"""The local store's file: created whole, checked before use, and every failure of it named.

A damaged store must never pass for an empty one (every Workspace gone without a word) nor end
in a traceback. So:
- a new store is built in a temporary file and linked into place complete: a store file on disk
  is never legitimately empty, and a 0-byte `store.db` is damage, not "new";
- SQLite's own header fields mark the file as ours (`application_id`) and give its schema
  version (`user_version`); a store made before they were set is adopted when its tables are ours;
- opening checks, in order: a regular file, not empty, an SQLite database (SQLite's own first
  read), ours, a version this build reads, then `PRAGMA quick_check` (`integrity_check` with
  `check="full"`); the file is never opened other than through SQLite (see `_check_file`);
- SQLite errors met later are translated once (`translate_error`): corruption becomes
  `StoreDamaged`, I/O and permission failures `StateNotAccessible`, both naming the path and what
  to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import tempfile
from pathlib import Path
from typing import Literal

from kaito.cluster import errors

APPLICATION_ID = 0x6B616974  # "kait"
SCHEMA_VERSION = 1
SNAPSHOT_DIR = "snapshots"  # beside the store file; see `snapshots`
Check = Literal["none", "quick", "full"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE, rv INTEGER NOT NULL, body TEXT NOT NULL, managed TEXT NOT NULL,
    PRIMARY KEY (kind, namespace, name));
CREATE TABLE IF NOT EXISTS labels (uid TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (key, value, uid));
CREATE INDEX IF NOT EXISTS labels_by_uid ON labels (uid);
CREATE TABLE IF NOT EXISTS owners (owner_uid TEXT NOT NULL, dependent_uid TEXT NOT NULL,
    PRIMARY KEY (owner_uid, dependent_uid));
CREATE TABLE IF NOT EXISTS events (rv INTEGER PRIMARY KEY, kind TEXT NOT NULL,
    namespace TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_kind ON events (kind, rv);
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('rv', 0), ('compacted', 0);
"""
_TABLES = {"objects", "labels", "owners", "events", "counters"}
_DAMAGE_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
_ACCESS_CODES = (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL,
                 sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH)


def damaged(path: Path, detail: str) -> errors.StoreDamaged:
    """The one error of a damaged store: the file, what is wrong, and what to do."""
    snaps = sorted((path.parent / SNAPSHOT_DIR).glob("*.db"))
    newest = f"the newest snapshot is {snaps[-1]}" if snaps else f"no snapshot in {path.parent / SNAPSHOT_DIR}"
    return errors.StoreDamaged(
        f"local store {path} is damaged ({detail}): restore a snapshot with `kaito store restore` ({newest}), "
        f"or set the file aside and start empty with `kaito store reset`; the damaged file is kept", path=path)


def not_accessible(path: Path, detail: str) -> errors.StateNotAccessible:
    return errors.StateNotAccessible(
        f"cannot use {path}: {detail}; fix its permissions or free space, or point KAITO_HOME at a "
        f"writable folder", path=path)


def translate_error(exc: sqlite3.Error, path: Path) -> errors.ClusterError:
    """One SQLite failure as the protocol's typed error (busy → retryable `Unavailable`)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return errors.Unavailable(f"local store {exc.__class__.__name__}: busy", status=503)
    if code in _DAMAGE_CODES:
        return damaged(path, "not an SQLite database" if code == sqlite3.SQLITE_NOTADB else str(exc))
    if code in _ACCESS_CODES:
        return not_accessible(path, str(exc))
    return errors.ClusterError(f"local store error: {exc}")


def ensure_dir(folder: Path) -> None:
    """`folder` exists as a folder (made if missing), or `StateNotAccessible` naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise not_accessible(folder, "a file is where this folder should be") from None
    except OSError as exc:
        raise not_accessible(folder, exc.strerror or str(exc)) from None
    if not folder.is_dir():
        raise not_accessible(folder, "not a folder")


def create(path: Path) -> None:
    """A new, empty store at `path`, appearing complete (built aside, then linked into place).

    If another process creates it first, theirs is kept."""
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.new-")
    except OSError as exc:
        raise not_accessible(path.parent, exc.strerror or str(exc)) from None
    os.close(fd)
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            _write_schema(db)
        finally:
            db.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError:
            if not path.exists():  # a file system without hard links
                os.replace(tmp, path)
    except sqlite3.Error as exc:
        raise translate_error(exc, path) from None
    except OSError as exc:
        raise not_accessible(path.parent, exc.strerror or str(exc)) from None
    finally:
        for leftover in (tmp, f"{tmp}-wal", f"{tmp}-shm"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)


def _write_schema(db: sqlite3.Connection) -> None:
    db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA application_id={APPLICATION_ID}; "
                     f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")


def connect(path: Path, *, busy_timeout_s: float = 10.0, any_thread: bool = False,
            check: Check = "none", readonly: bool = False) -> sqlite3.Connection:
    """An open connection to the store at `path` (created when missing), checked as `check` says.

    `readonly` opens an existing file (a snapshot) without writing to it. Raises `StoreDamaged` or
    `StateNotAccessible`, never a raw SQLite or OS error."""
    path = Path(path)
    if not readonly and not path.exists() and not path.is_symlink():
        create(path)
    _check_file(path)
    try:
        target = f"file:{path.resolve()}?mode=ro" if readonly else str(path)
        db = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None,
                             check_same_thread=not any_thread, uri=readonly)
    except sqlite3.Error as exc:
        raise translate_error(exc, path) from None
    try:
        _check_identity(db, path, adopt=not readonly)  # before any write: a foreign file stays untouched
        if not readonly:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        if check != "none":
            check_integrity(db, path, full=check == "full")
    except sqlite3.Error as exc:
        db.close()
        raise translate_error(exc, path) from None
    except errors.ClusterError:
        db.close()
        raise
    return db


def _check_file(path: Path) -> None:
    # Only stat, never open: closing any other descriptor of the file in this process would drop
    # the POSIX locks of every SQLite connection the process holds on it, and another process
    # would then checkpoint and delete the WAL under them (SQLite's documented pitfall). SQLite
    # itself says "not a database" on its first read of a file that is not one.
    try:
        info = path.stat()
    except FileNotFoundError:
        raise damaged(path, "missing, where the store file should be") from None
    except OSError as exc:
        raise not_accessible(path, exc.strerror or str(exc)) from None
    if not stat.S_ISREG(info.st_mode):
        raise damaged(path, f"{'a folder' if stat.S_ISDIR(info.st_mode) else 'not a regular file'}, "
                            "where the store file should be")
    if info.st_size == 0:
        raise damaged(path, "the file is empty (0 bytes); a store is never empty on disk, so its content was lost")


def _check_identity(db: sqlite3.Connection, path: Path, *, adopt: bool) -> None:
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise errors.StoreDamaged(
                f"local store {path} has schema version {version}, newer than this kaito reads "
                f"({SCHEMA_VERSION}); upgrade kaito, or point KAITO_HOME elsewhere", path=path)
        return
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if app_id != 0 or not tables >= _TABLES:
        raise damaged(path, "an SQLite database, but not a kaito store")
    if adopt:
        _write_schema(db)  # a store from before these marks: ours by its tables, adopted


def check_integrity(db: sqlite3.Connection, path: Path, *, full: bool = False) -> None:
    """`PRAGMA quick_check` (or the slower `integrity_check`); `StoreDamaged` with SQLite's first finding."""
    # One read transaction around the check: without it, pages other processes write while the
    # check walks the file would read as damage.
    db.execute("BEGIN")
    try:
        rows = [str(r[0]) for r in db.execute("PRAGMA integrity_check(5)" if full else "PRAGMA quick_check(5)")]
    finally:
        db.execute("COMMIT")
    if rows != ["ok"]:
        findings = [line for row in rows for line in row.splitlines() if line and not line.startswith("***")]
        raise damaged(path, f"integrity check: {(findings or rows)[0]}")
