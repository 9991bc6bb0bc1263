"""The embedded cluster's object store: Kubernetes object semantics on one SQLite file.

Several processes share the file at once (the local control plane writes, the `kaito` CLI
reads and applies), so every write is one `BEGIN IMMEDIATE` transaction (WAL mode, busy
timeout) that reads, checks and writes atomically. Each write takes the next value of one
global counter as its resourceVersion and appends a row to an event log; watches read that log
(`read_events`), and compaction keeps the log bounded (a watch from before the kept window gets
`Gone`). The managed-fields bookkeeping of server-side apply is in `fields.py`.

This class is synchronous, one connection per instance; `LocalCluster` keeps one for reads and
one non-waiting one for writes on the event loop's thread, one for writes that must wait for a
lock on a dedicated thread, and adds the async protocol, wake-ups and watches. Creating and
checking the file, and naming its failures (`StoreDamaged`, `StateNotAccessible`), is `storefile`'s.
"""

from __future__ import annotations

import copy
import functools
import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from kaito.cluster import errors
from kaito.cluster.events import now_rfc3339
from kaito.cluster.local import fields, storefile
from kaito.cluster.protocol import DEFAULT_NAMESPACE, ResourceKind, kind_of

_COMPACT_EVERY = 500
T = TypeVar("T")


def _translated(method: Callable[..., T]) -> Callable[..., T]:
    """SQLite's failures as the protocol's typed errors (`storefile.translate_error`), at each public
    method; a constraint violation stays what it is, a bug."""

    @functools.wraps(method)
    def wrapper(self: ObjectStore, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as exc:
            raise storefile.translate_error(exc, self.path) from exc

    return wrapper


def _without_rv_noise(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts of an object whose change makes a write (not resourceVersion itself)."""
    out = dict(obj)
    out["metadata"] = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return out


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class ObjectStore:
    """Synchronous object store on one SQLite file; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        history: int = 20_000,
        busy_timeout_s: float = 10.0,
        any_thread: bool = False,
        check: storefile.Check = "none",
    ) -> None:
        self.path = Path(path)
        self.history = history
        self.writes = 0  # committed writes made through this store object (for benches/tests)
        self._compact_every = max(1, min(_COMPACT_EVERY, history // 2))
        self._db = storefile.connect(self.path, busy_timeout_s=busy_timeout_s, any_thread=any_thread, check=check)

    def close(self) -> None:
        self._db.close()

    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

    # ---- reads -------------------------------------------------------------------------------

    @_translated
    def get(self, kind: ResourceKind, name: str, namespace: str | None) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
            (kind.key, self._ns(kind, namespace), name),
        ).fetchone()
        if row is None:
            raise errors.NotFound(f"{kind.kind} {self._ns(kind, namespace)}/{name} not found".replace(" /", " "))
        return json.loads(row[0])

    @_translated
    def list(
        self, kind: ResourceKind, namespace: str | None, labels: Mapping[str, str] | None
    ) -> tuple[list[dict[str, Any]], str]:
        # Selecting by label starts from an indexed side table (CROSS JOIN fixes that order in
        # SQLite), so a selector never scans every object of the kind.
        wanted = list((labels or {}).items())
        tables = "".join(f"labels l{i} CROSS JOIN " for i in range(len(wanted)))
        sql, args = f"SELECT o.body FROM {tables}objects o WHERE o.kind=?", [kind.key]
        for i, (key, value) in enumerate(wanted):
            sql += f" AND l{i}.key=? AND l{i}.value=? AND l{i}.uid=o.uid"
            args += [key, str(value)]
        if namespace is not None and kind.namespaced:
            sql += " AND o.namespace=?"
            args.append(namespace)
        with self._transaction(write=False):
            items = [json.loads(r[0]) for r in self._db.execute(sql + " ORDER BY o.namespace, o.name", args)]
            rv = self._counter("rv")
        return items, str(rv)

    @_translated
    def read_events(
        self, kind: ResourceKind, namespace: str | None, after_rv: int, limit: int = 500
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Log entries of `kind` with resourceVersion > `after_rv`; `Gone` if already compacted."""
        sql, args = "SELECT rv, type, body FROM events WHERE kind=? AND rv>?", [kind.key, after_rv]
        if namespace is not None and kind.namespaced:
            sql += " AND namespace=?"
            args.append(namespace)
        with self._transaction(write=False):
            if after_rv < self._counter("compacted"):
                raise errors.Gone(f"resourceVersion {after_rv} is too old for {kind.kind}")
            rows = self._db.execute(sql + " ORDER BY rv LIMIT ?", [*args, limit]).fetchall()
        return [(rv, typ, json.loads(body)) for rv, typ, body in rows]

    @_translated
    def current_rv(self) -> int:
        return self._counter("rv")

    @_translated
    def read_tail(self, after_rv: int) -> tuple[int, dict[str, int] | None]:
        """The head resourceVersion and, per kind key, the newest log entry after `after_rv`.

        One small query (no bodies) tells every watch of a process which kinds changed;
        `None` instead of the map when entries after `after_rv` were already compacted.
        """
        with self._transaction(write=False):
            head = self._counter("rv")
            if after_rv < self._counter("compacted"):
                return head, None
            rows = self._db.execute(
                "SELECT kind, max(rv) FROM events WHERE rv>? GROUP BY kind", (after_rv,)
            ).fetchall()
        return head, dict(rows)

    # ---- writes ------------------------------------------------------------------------------

    @_translated
    def apply(self, obj: dict[str, Any], manager: str, *, force: bool, status: bool,
              admit: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]] | None = None
              ) -> dict[str, Any]:
        """Server-side apply; `admit(new, current or None)` may change the merged object before it is
        stored, inside the transaction (what a mutating admission webhook does on an API server)."""
        kind = kind_of(obj)
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name or not isinstance(name, str):
            raise errors.Invalid(f"{kind.kind}: metadata.name is required")
        namespace = self._ns(kind, meta.get("namespace"))
        with self._transaction(write=True):
            row = self._row(kind, namespace, name)
            if row is None:
                if status:
                    raise errors.NotFound(f"{kind.kind} {namespace}/{name} not found (status write)")
                if meta.get("resourceVersion"):
                    raise errors.Conflict(f"{kind.kind} {namespace}/{name} does not exist at that resourceVersion")
                current: dict[str, Any] = {
                    "apiVersion": kind.api_version,
                    "kind": kind.kind,
                    "metadata": {"name": name, **({"namespace": namespace} if kind.namespaced else {})},
                }
                managed: fields.Managed = {}
            else:
                current, managed = json.loads(row[0]), json.loads(row[1])
                expected = meta.get("resourceVersion")
                if expected and str(expected) != current["metadata"]["resourceVersion"]:
                    raise errors.Conflict(
                        f"{kind.kind} {namespace}/{name}: resourceVersion {expected} is stale "
                        f"(now {current['metadata']['resourceVersion']})"
                    )
            new, new_managed = fields.compute_apply(current, managed, obj, manager, force=force, status=status)
            if admit is not None:
                new = admit(new, None if row is None else current)
            if row is not None and _without_rv_noise(new) == _without_rv_noise(current) and new_managed == managed:
                return current  # a no-op apply is not a write
            if row is None:
                new["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
            elif _spec_part(new) != _spec_part(current):
                new["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
                self._remove(kind, new)
                return new
            stored = self._put(kind, new, new_managed, "ADDED" if row is None else "MODIFIED")
            if row is None and not self._owners_alive(stored):
                self._delete_object(kind, stored)  # the garbage collector's view: its owner is gone
        return stored

    @_translated
    def delete(self, kind: ResourceKind, name: str, namespace: str | None) -> None:
        with self._transaction(write=True):
            row = self._row(kind, self._ns(kind, namespace), name)
            if row is None:
                raise errors.NotFound(f"{kind.kind} {self._ns(kind, namespace)}/{name} not found".replace(" /", " "))
            self._delete_object(kind, json.loads(row[0]))

    @_translated
    def record_event(self, event: dict[str, Any]) -> None:
        """Create the Event, or bump `count`/`lastTimestamp` of the same one (aggregation)."""
        meta = event["metadata"]
        with self._transaction(write=True):
            row = self._row(kind_of(event), meta["namespace"], meta["name"])
            if row is not None:
                existing, managed = json.loads(row[0]), json.loads(row[1])
                existing["count"] = int(existing.get("count", 1)) + 1
                existing["lastTimestamp"] = now_rfc3339()
                self._put(kind_of(event), existing, managed, "MODIFIED")
                return
            stamp = now_rfc3339()
            new = {**copy.deepcopy(event), "count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp}
            new["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=stamp, generation=1)
            self._put(kind_of(event), new, {}, "ADDED")

    @_translated
    def migrate_kind(self, old_key: str, convert: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Rewrite every object stored under kind key `old_key` through `convert`, in one transaction
        (a storage-version migration: the objects of an older served version become the storage
        version's, under its key). Returns how many; a store with none pays one indexed read."""
        if self._db.execute("SELECT 1 FROM objects WHERE kind=? LIMIT 1", (old_key,)).fetchone() is None:
            return 0
        with self._transaction(write=True):
            rows = self._db.execute("SELECT body, managed FROM objects WHERE kind=?", (old_key,)).fetchall()
            for body, managed in rows:
                old = json.loads(body)
                self._db.execute("DELETE FROM objects WHERE kind=? AND uid=?", (old_key, old["metadata"]["uid"]))
                new = convert(old)
                self._put(kind_of(new), new, json.loads(managed), "MODIFIED")
        return len(rows)

    @_translated
    def compact(self, keep: int = 0) -> int:
        """Drop the event log except the last `keep` entries; watches from before get `Gone`."""
        with self._transaction(write=True):
            floor = max(0, self._counter("rv") - keep)
            self._db.execute("DELETE FROM events WHERE rv <= ?", (floor,))
            self._db.execute("UPDATE counters SET value = max(value, ?) WHERE key='compacted'", (floor,))
        return floor

    @_translated
    def collect_garbage(self) -> int:
        """Delete objects all of whose owners are gone (what Kubernetes' GC does); returns how many."""
        with self._transaction(write=True):
            orphans = self._db.execute(
                "SELECT DISTINCT o.kind, o.body FROM owners w JOIN objects o ON o.uid = w.dependent_uid "
                "WHERE NOT EXISTS (SELECT 1 FROM owners w2 JOIN objects p ON p.uid = w2.owner_uid "
                "WHERE w2.dependent_uid = w.dependent_uid)"
            ).fetchall()
            for _kind_key, body in orphans:
                obj = json.loads(body)
                self._delete_object(kind_of(obj), obj)
        return len(orphans)

    # ---- internals ---------------------------------------------------------------------------

    def _ns(self, kind: ResourceKind, namespace: str | None) -> str:
        return (namespace or DEFAULT_NAMESPACE) if kind.namespaced else ""

    def _row(self, kind: ResourceKind, namespace: str, name: str) -> tuple[str, str] | None:
        return self._db.execute(
            "SELECT body, managed FROM objects WHERE kind=? AND namespace=? AND name=?",
            (kind.key, namespace, name),
        ).fetchone()

    def _counter(self, key: str) -> int:
        return self._db.execute("SELECT value FROM counters WHERE key=?", (key,)).fetchone()[0]

    def _next_rv(self) -> int:
        return self._db.execute("UPDATE counters SET value = value + 1 WHERE key='rv' RETURNING value").fetchone()[0]

    def _log(self, kind: ResourceKind, obj: dict[str, Any], typ: str, rv: int) -> None:
        namespace = obj["metadata"].get("namespace", "")
        self._db.execute("INSERT INTO events VALUES (?,?,?,?,?)", (rv, kind.key, namespace, typ, json.dumps(obj)))
        self.writes += 1
        if rv % self._compact_every == 0 and rv > self.history:
            floor = rv - self.history
            self._db.execute("DELETE FROM events WHERE rv <= ?", (floor,))
            self._db.execute("UPDATE counters SET value = ? WHERE key='compacted'", (floor,))

    def _put(self, kind: ResourceKind, obj: dict[str, Any], managed: fields.Managed, typ: str) -> dict[str, Any]:
        rv = self._next_rv()
        meta = obj["metadata"]
        meta["resourceVersion"] = str(rv)
        self._db.execute(
            "INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?)",
            (kind.key, meta.get("namespace", ""), meta["name"], meta["uid"], rv, json.dumps(obj), json.dumps(managed)),
        )
        self._db.execute("DELETE FROM owners WHERE dependent_uid=?", (meta["uid"],))
        self._db.execute("DELETE FROM labels WHERE uid=?", (meta["uid"],))
        self._db.executemany(
            "INSERT INTO labels VALUES (?,?,?)", [(meta["uid"], k, str(v)) for k, v in (meta.get("labels") or {}).items()]
        )
        for ref in meta.get("ownerReferences") or []:
            if ref.get("uid"):
                self._db.execute("INSERT OR IGNORE INTO owners VALUES (?,?)", (ref["uid"], meta["uid"]))
        self._log(kind, obj, typ, rv)
        return obj

    def _owners_alive(self, obj: dict[str, Any]) -> bool:
        uids = [r["uid"] for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid")]
        if not uids:
            return True
        marks = ",".join("?" * len(uids))
        return self._db.execute(f"SELECT 1 FROM objects WHERE uid IN ({marks}) LIMIT 1", uids).fetchone() is not None

    def _delete_object(self, kind: ResourceKind, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                row = self._row(kind, meta.get("namespace", ""), meta["name"])
                self._put(kind, obj, json.loads(row[1]), "MODIFIED")
            return
        self._remove(kind, obj)

    def _remove(self, kind: ResourceKind, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self._db.execute(
            "DELETE FROM objects WHERE kind=? AND namespace=? AND name=?",
            (kind.key, meta.get("namespace", ""), meta["name"]),
        )
        self._db.execute("DELETE FROM owners WHERE dependent_uid=?", (meta["uid"],))
        self._db.execute("DELETE FROM labels WHERE uid=?", (meta["uid"],))
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        self._log(kind, obj, "DELETED", rv)
        # Cascade: dependents none of whose other owners remain follow their owner (background GC).
        dependents = self._db.execute(
            "SELECT o.body FROM owners w JOIN objects o ON o.uid = w.dependent_uid WHERE w.owner_uid=?",
            (meta["uid"],),
        ).fetchall()
        self._db.execute("DELETE FROM owners WHERE owner_uid=?", (meta["uid"],))
        for (body,) in dependents:
            dependent = json.loads(body)
            if not self._owners_alive(dependent):
                self._delete_object(kind_of(dependent), dependent)

    class _Tx:
        def __init__(self, db: sqlite3.Connection, write: bool) -> None:
            self.db, self.write = db, write

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE" if self.write else "BEGIN")

        def __exit__(self, exc_type, exc, tb) -> bool:
            try:
                self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            except sqlite3.Error:
                if exc_type is None:
                    raise  # translated by the public method around it
            return False

    def _transaction(self, *, write: bool) -> ObjectStore._Tx:
        return ObjectStore._Tx(self._db, write)
