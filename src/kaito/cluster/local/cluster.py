"""`LocalCluster`: the `Cluster` protocol over the SQLite `ObjectStore`, for one process.

A write may wait for another process's transaction (busy timeout), and the event loop must
never block on that wait. So a write first tries, on the loop's thread, a connection that never
waits (busy timeout 0): with the file free - nearly always - it commits in well under a
millisecond. Only a write that finds the file locked goes to one dedicated thread that owns a
connection with the real busy timeout. (Sending every write to that thread made each of its
SQLite calls wait for the loop thread to hand back the GIL, several milliseconds a call: under
load the writer thread, not SQLite, set the pace.)
Reads run directly on the caller's thread over their own connection: in WAL mode a reader never
waits for a writer, a read takes tens of microseconds, and a thread hop would cost ten times that.
Watches follow the store's event log: after a write made through this instance (an in-process
wake-up), and every `poll_interval` seconds for writes made by other processes sharing the file,
one small read of which kinds changed serves all watches, and only watches of those kinds re-read
the log.

Retries: a write that finds the file locked is retried by SQLite itself for `busy_timeout_s`;
only then does it surface as `Unavailable`. There is no other retry loop here.

Versions: this class is the local cluster's API server, so it also does what the CRD's conversion
webhook and kaito's mutating webhook do on a real one (`kaito.cluster.served`): a Workspace written
in any served version is stored once, in the storage version, with the version its spec was
written in recorded; reads answer in the version asked for. A store from before v1beta1 (its
Workspaces kept as v1alpha1) is migrated when it is opened.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kaito.cluster import errors, served
from kaito.cluster.events import build_event
from kaito.cluster.local.store import ObjectStore
from kaito.cluster.local.storefile import Check
from kaito.cluster.protocol import (
    FIELD_MANAGER,
    Object,
    ObjectList,
    Propagation,
    ResourceKind,
    WatchEvent,
    kind_of,
    storage_kind,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
_READ_LIMIT = 500  # ObjectStore.read_events' default page: a full page means there may be more


def _labels_match(obj: Object, labels: Mapping[str, str] | None) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in (labels or {}).items())


class LocalCluster:
    """The embedded cluster's API: an SQLite file at `path`, shareable between processes.

    Use one instance per event loop (its wake-up event belongs to the loop that first waits).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        poll_interval: float = 0.05,
        history: int = 20_000,
        busy_timeout_s: float = 10.0,
        check: Check = "quick",
    ) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        # The first connection checks the file (`check`: quick, full, none); a damaged or
        # inaccessible store raises `StoreDamaged` / `StateNotAccessible` here, naming the file.
        self._reader = ObjectStore(self.path, history=history, busy_timeout_s=busy_timeout_s, any_thread=True,
                                   check=check)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaito-local-store")
        try:
            self._store: ObjectStore = self._executor.submit(
                ObjectStore, self.path, history=history, busy_timeout_s=busy_timeout_s
            ).result()
            self._executor.submit(self._store.migrate_kind, served.LEGACY_STORAGE_KEY, served.migrate_legacy).result()
            self._writer = ObjectStore(self.path, history=history, busy_timeout_s=0.0, any_thread=True)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._reader.close()
            raise
        self._changed = asyncio.Event()
        self._closed = False
        # The shared tail of the event log: which kinds have entries up to `_tail_rv`, read once
        # for all watches of this instance (after a write here, or once per poll interval for
        # other processes' writes), so a watch re-reads the log only when its kind changed.
        # Everything before the first tail counts as changed for every kind (`_all_rv`).
        self._tail_rv = self._all_rv = self._reader.current_rv()
        self._kind_rv: dict[str, int] = {}
        self._tail_stale = False
        self._tail_read_at = 0.0

    @property
    def writes(self) -> int:
        """Committed writes (creations, changes, deletions, events) made through this instance."""
        return self._store.writes + self._writer.writes

    def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise errors.Unavailable("local cluster is closed")
        return fn(*args, **kwargs)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise errors.Unavailable("local cluster is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def _wake_watchers(self) -> None:
        self._tail_stale = True
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _refresh_tail(self) -> None:
        head, kinds = self._read(self._reader.read_tail, self._tail_rv)
        if kinds is None:  # compacted past the tail: any kind may have changed
            self._all_rv = head
        else:
            self._kind_rv.update(kinds)
        self._tail_rv = max(self._tail_rv, head)
        self._tail_stale = False
        self._tail_read_at = asyncio.get_running_loop().time()

    def _may_have_changed(self, kind: ResourceKind, checked: int) -> bool:
        """Whether the log may hold entries of `kind` after `checked` (else a read is wasted)."""
        if self._tail_stale:
            self._refresh_tail()
        return max(self._kind_rv.get(kind.key, 0), self._all_rv) > checked

    async def _write(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """`ObjectStore.<name>(...)` on the loop's thread if the file is free, else on the writer thread."""
        try:
            try:
                return self._read(getattr(self._writer, name), *args, **kwargs)
            except errors.Unavailable:
                if self._closed:
                    raise
                if self._writer.in_transaction():
                    self._writer.rollback()  # a commit found the file busy: nothing of it stays
            return await self._call(getattr(self._store, name), *args, **kwargs)
        finally:
            self._wake_watchers()

    # ---- the protocol ------------------------------------------------------------------------

    async def get(self, kind: ResourceKind, name: str, namespace: str | None = None) -> Object:
        return served.to_served(self._read(self._reader.get, storage_kind(kind), name, namespace), kind)

    async def list(
        self, kind: ResourceKind, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> ObjectList:
        items, rv = self._read(self._reader.list, storage_kind(kind), namespace, labels)
        return ObjectList(items=[served.to_served(o, kind) for o in items], resource_version=rv)

    async def watch(
        self,
        kind: ResourceKind,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        resource_version: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        if resource_version is None:
            listed = await self.list(kind, namespace, labels)
            for item in listed.items:
                yield WatchEvent("ADDED", item)
            last = int(listed.resource_version)
        else:
            try:
                last = int(resource_version)
            except ValueError as exc:
                raise errors.Invalid(f"watch: resourceVersion {resource_version!r} is not a number") from exc
        checked = -1  # the log is known to hold no entries of this kind in (last, checked]: read once first
        stored = storage_kind(kind)
        while not self._closed:
            changed = self._changed
            rows: list = []
            try:
                if self._may_have_changed(stored, checked):
                    tail = self._tail_rv  # committed before the read below, so the read covers it
                    rows = self._read(self._reader.read_events, stored, namespace, last)
                    if len(rows) < _READ_LIMIT:
                        checked = max(last, tail)
            except errors.Unavailable:
                if self._closed:
                    return  # closed while the consumer was busy: end quietly, as documented
                raise
            for rv, typ, obj in rows:
                last = rv
                if _labels_match(obj, labels):
                    yield WatchEvent(typ, served.to_served(obj, kind))  # type: ignore[arg-type]
            if not rows:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
                # that races with the event being set, and a watch must always stop when cancelled.
                try:
                    async with asyncio.timeout(self.poll_interval):
                        await changed.wait()
                except TimeoutError:
                    # Other processes' writes: the first watch to time out reads the tail for all.
                    if asyncio.get_running_loop().time() - self._tail_read_at >= self.poll_interval:
                        self._tail_stale = True

    async def apply(self, obj: Object, *, field_manager: str = FIELD_MANAGER, force: bool = True) -> Object:
        kind = kind_of(obj)
        body, written = served.to_storage(obj, kind)
        admit = served.stamp(written) if written is not None else None
        stored = await self._write("apply", body, field_manager, force=force, status=False, admit=admit)
        return served.to_served(stored, kind)

    async def apply_status(self, obj: Object, *, field_manager: str = FIELD_MANAGER) -> Object:
        kind = kind_of(obj)
        body, _ = served.to_storage(obj, kind)
        return served.to_served(await self._write("apply", body, field_manager, force=True, status=True), kind)

    async def delete(
        self, kind: ResourceKind, name: str, namespace: str | None = None, *, propagation: Propagation = "Background"
    ) -> None:
        # Both policies are the store's cascade: dependents go in the deleting transaction.
        await self._write("delete", storage_kind(kind), name, namespace)

    async def emit_event(self, involved: Object, type: str, reason: str, message: str) -> None:
        try:
            await self._write("record_event", build_event(involved, type, reason, message))
        except errors.ClusterError as exc:
            log.warning("could not record event %s on %s: %s", reason, involved.get("kind"), exc)

    async def collect_garbage(self) -> int:
        """Remove objects whose owners are all gone (deletion already cascades; this sweeps strays)."""
        return await self._write("collect_garbage")

    async def compact(self, keep: int = 0) -> int:
        """Drop watch history but the last `keep` changes (also done automatically past `history`)."""
        return await self._call(self._store.compact, keep)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake_watchers()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._store.close)
        self._executor.shutdown(wait=False)
        self._writer.close()
        self._reader.close()
