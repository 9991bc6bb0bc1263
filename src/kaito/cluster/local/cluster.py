"""`LocalCluster`: the `Cluster` protocol over the SQLite `ObjectStore`, for one process.

A write may wait for another process's transaction (busy timeout), so writes run on one
dedicated thread that owns the writing connection and the event loop never blocks on them.
Reads run directly on the caller's thread over a second connection: in WAL mode a reader never
waits for a writer, a read takes tens of microseconds, and a thread hop would cost ten times that. Watches poll the store's event log: immediately after a write made through this
instance (an in-process wake-up), and every `poll_interval` seconds for writes made by other
processes sharing the file.

Retries: a write that finds the file locked is retried by SQLite itself for `busy_timeout_s`;
only then does it surface as `Unavailable`. There is no other retry loop here.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kaito.cluster import errors
from kaito.cluster.events import build_event
from kaito.cluster.local.store import ObjectStore
from kaito.cluster.protocol import FIELD_MANAGER, Object, ObjectList, Propagation, ResourceKind, WatchEvent

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    ) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kaito-local-store")
        self._store: ObjectStore = self._executor.submit(
            ObjectStore, self.path, history=history, busy_timeout_s=busy_timeout_s
        ).result()
        self._reader = ObjectStore(self.path, history=history, busy_timeout_s=busy_timeout_s, any_thread=True)
        self._changed = asyncio.Event()
        self._closed = False

    @property
    def writes(self) -> int:
        """Committed writes (creations, changes, deletions, events) made through this instance."""
        return self._store.writes

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise errors.Unavailable("local cluster is closed")
        return fn(*args)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise errors.Unavailable("local cluster is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def _wake_watchers(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await self._call(fn, *args, **kwargs)
        finally:
            self._wake_watchers()

    # ---- the protocol ------------------------------------------------------------------------

    async def get(self, kind: ResourceKind, name: str, namespace: str | None = None) -> Object:
        return self._read(self._reader.get, kind, name, namespace)

    async def list(
        self, kind: ResourceKind, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> ObjectList:
        items, rv = self._read(self._reader.list, kind, namespace, labels)
        return ObjectList(items=items, resource_version=rv)

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
        while not self._closed:
            changed = self._changed
            try:
                rows = self._read(self._reader.read_events, kind, namespace, last)
            except errors.Unavailable:
                if self._closed:
                    return  # closed while the consumer was busy: end quietly, as documented
                raise
            for rv, typ, obj in rows:
                last = rv
                if _labels_match(obj, labels):
                    yield WatchEvent(typ, obj)  # type: ignore[arg-type]
            if not rows:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
                # that races with the event being set, and a watch must always stop when cancelled.
                try:
                    async with asyncio.timeout(self.poll_interval):
                        await changed.wait()
                except TimeoutError:
                    pass

    async def apply(self, obj: Object, *, field_manager: str = FIELD_MANAGER, force: bool = True) -> Object:
        return await self._write(self._store.apply, obj, field_manager, force=force, status=False)

    async def apply_status(self, obj: Object, *, field_manager: str = FIELD_MANAGER) -> Object:
        return await self._write(self._store.apply, obj, field_manager, force=True, status=True)

    async def delete(
        self, kind: ResourceKind, name: str, namespace: str | None = None, *, propagation: Propagation = "Background"
    ) -> None:
        # Both policies are the store's cascade: dependents go in the deleting transaction.
        await self._write(self._store.delete, kind, name, namespace)

    async def emit_event(self, involved: Object, type: str, reason: str, message: str) -> None:
        try:
            await self._write(self._store.record_event, build_event(involved, type, reason, message))
        except errors.ClusterError as exc:
            log.warning("could not record event %s on %s: %s", reason, involved.get("kind"), exc)

    async def collect_garbage(self) -> int:
        """Remove objects whose owners are all gone (deletion already cascades; this sweeps strays)."""
        return await self._write(self._store.collect_garbage)

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
        self._reader.close()
