"""The manager: watches that feed the work queue, and the workers that drain it.

Watches: Workspaces (all namespaces) enqueue themselves; owned Deployments, StatefulSets, Jobs,
Services, ControllerRevisions, their pods and the cluster-scoped NodeClaims enqueue their Workspace, found by
the controller owner reference or the `kaito.sh/workspace` + `kaito.sh/workspacenamespace`
labels; Nodes enqueue the Workspaces whose `matchLabels` they carry (a BYO node being labelled,
a provisioned node turning Ready). Each watch lists first, then watches from the list's
resourceVersion, resumes from the last event it saw, and re-lists when told `Gone`. A resync
enqueues every known Workspace; with nothing changed it costs reads only, never a write.

A failed reconcile is handled by kind (`errors`): a temporary one is logged and retried; a bug is
logged with its traceback, recorded as a Warning event on the Workspace (`kaito describe` shows
it), and retried at most `Settings.bug_retry_limit` times.

The operator hooks in through public seams only - a custom reconciler, Workspace-event observers,
a work-queue observer, a failure observer and `abort()` - so the manager's internals can change
without breaking it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from kaito.api import labels
from kaito.cluster import errors, protocol
from kaito.cluster.protocol import Cluster, ResourceKind, WatchEvent
from kaito.controller import events
from kaito.controller.errors import ErrorKind, Failure
from kaito.controller.observe import WorkspaceKey, node_list_labels
from kaito.controller.queue import QueueObserver, WorkQueue, compute_backoff, run_workers
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings

log = logging.getLogger(__name__)

OWNED_WATCHES: tuple[ResourceKind, ...] = (
    protocol.DEPLOYMENT,
    protocol.STATEFULSET,
    protocol.JOB,
    protocol.SERVICE,
    protocol.CONTROLLER_REVISION,
    # Pods (by the workspace labels): a model server that stops leaves why in its termination message.
    protocol.POD,
)

# Called with every Workspace watch event (listed items arrive as ADDED), before the manager acts on it.
WorkspaceEventObserver = Callable[[WatchEvent], None]
REASON_RECONCILE_ERROR = "ReconcileError"
KEPT_FAILURES = 100  # the most recent failures kept in `Manager.errors` (tests and debugging)


class FailureObserver(Protocol):
    """Hears every failed reconcile (`OperatorMetrics` counts them by kind)."""

    def observe_failure(self, failure: Failure) -> None: ...


def build_failure_event(failure: Failure) -> tuple[str, str, str]:
    """The Warning event a bug leaves on its Workspace (type, reason, message). The message does not
    carry the attempt number, so repeats aggregate into one Event whose count grows."""
    error = f"{type(failure.error).__name__}: {failure.error}"
    then = ("not retried until the Workspace changes" if failure.gave_up
            else "retrying with backoff")
    return (events.WARNING, REASON_RECONCILE_ERROR, f"reconcile failed with an internal error ({error}); {then}")


def owner_key(obj: Mapping[str, Any]) -> WorkspaceKey | None:
    """The Workspace an object belongs to: its controller owner reference, else the workspace labels."""
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == protocol.WORKSPACE.kind:
            return WorkspaceKey(meta.get("namespace") or protocol.DEFAULT_NAMESPACE, ref["name"])
    obj_labels = meta.get("labels") or {}
    name = obj_labels.get(labels.LABEL_WORKSPACE_NAME)
    namespace = obj_labels.get(labels.LABEL_WORKSPACE_NAMESPACE)
    if name and namespace:
        return WorkspaceKey(namespace, name)
    return None


def compute_workspace_fingerprint(obj: Mapping[str, Any]) -> tuple:
    """What a Workspace event must change to be worth a reconcile: spec (generation), deletion,
    finalizers, annotations (`kaito.sh/enablelb`). A status-only change - nearly always our own
    status write - is skipped, like controller-runtime's GenerationChangedPredicate."""
    meta = obj.get("metadata") or {}
    return (
        meta.get("generation"),
        meta.get("deletionTimestamp"),
        tuple(meta.get("finalizers") or ()),
        tuple(sorted((meta.get("annotations") or {}).items())),
    )


# Index bucket for selectors with a value that cannot be a dict key (malformed input): always scanned.
_UNINDEXED = ("", "")


def _hashable(pair: tuple) -> bool:
    try:
        hash(pair)
    except TypeError:
        return False
    return True


def _index_pair(selector: Mapping[str, Any]) -> tuple:
    """The label pair a non-empty selector is indexed under: its smallest, or `_UNINDEXED`."""
    pair = min(selector.items(), key=lambda item: item[0])
    return pair if _hashable(pair) and pair != _UNINDEXED else _UNINDEXED


class Manager:
    def __init__(
        self,
        cluster: Cluster,
        settings: Settings,
        *,
        reconciler: Reconciler | None = None,
        watch_retry_base: float = 0.2,
        resync_period: float | None = 600.0,
        on_workspace_event: Iterable[WorkspaceEventObserver] = (),
        queue_observer: QueueObserver | None = None,
        failure_observer: FailureObserver | None = None,
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.reconciler = reconciler or Reconciler(cluster, settings)
        self.queue = WorkQueue(observer=queue_observer)
        self.on_workspace_event: list[WorkspaceEventObserver] = list(on_workspace_event)
        self.watch_retry_base = watch_retry_base
        self.resync_period = resync_period
        # matchLabels of every known Workspace: which Workspaces a Node event concerns.
        self._selectors: dict[WorkspaceKey, dict[str, str]] = {}
        # The same selectors indexed by one of their label pairs, so a Node event looks only at
        # Workspaces that could match it instead of every Workspace (O(N) per Node event).
        self._selector_index: dict[tuple[str, str], dict[WorkspaceKey, None]] = {}
        self._seen: dict[WorkspaceKey, tuple] = {}
        self._tasks: list[asyncio.Task] = []
        self.relists: dict[str, int] = {}
        self.failure_observer = failure_observer
        self.errors: deque[Failure] = deque(maxlen=KEPT_FAILURES)

    # -- event mapping -------------------------------------------------------------------------

    def _on_workspace(self, event: WatchEvent) -> None:
        for observer in self.on_workspace_event:
            try:
                observer(event)
            except Exception:  # noqa: BLE001 - raising here would make the watch re-list forever
                log.exception("Workspace event observer %r failed", observer)
        meta = event.object.get("metadata") or {}
        key = WorkspaceKey(meta.get("namespace") or protocol.DEFAULT_NAMESPACE, meta.get("name") or "")
        if event.type == "DELETED":
            self._set_selector(key, None)
            self._seen.pop(key, None)
            return  # gone: nothing left to reconcile (its finalizer ran before)
        self._set_selector(key, node_list_labels(event.object))
        fingerprint = compute_workspace_fingerprint(event.object)
        if event.type == "MODIFIED" and self._seen.get(key) == fingerprint:
            return  # only the status changed - our own write: nothing new to act on
        self._seen[key] = fingerprint
        self.queue.add(key)

    def _set_selector(self, key: WorkspaceKey, selector: dict[str, str] | None) -> None:
        """Record (None: forget) a Workspace's matchLabels, keeping `_selector_index` in step."""
        old = self._selectors.pop(key, None) if selector is None else self._selectors.get(key)
        if old:
            pair = _index_pair(old)
            bucket = self._selector_index.get(pair)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._selector_index[pair]
        if selector is None:
            return
        self._selectors[key] = selector
        if selector:
            self._selector_index.setdefault(_index_pair(selector), {})[key] = None

    def _on_owned(self, event: WatchEvent) -> None:
        key = owner_key(event.object)
        if key is not None:
            self.queue.add(key)

    def _on_node(self, event: WatchEvent) -> None:
        node_labels = (event.object.get("metadata") or {}).get("labels") or {}
        key = owner_key(event.object)  # a NodeClaim's node carries the workspace labels
        if key is not None:
            self.queue.add(key)
        pairs = [pair for pair in node_labels.items() if _hashable(pair)] + [_UNINDEXED]
        for pair in pairs:
            for ws_key in self._selector_index.get(pair, ()):
                selector = self._selectors[ws_key]
                if all(node_labels.get(k) == v for k, v in selector.items()):
                    self.queue.add(ws_key)

    # -- watches -------------------------------------------------------------------------------

    async def _watch(self, kind: ResourceKind, handle) -> None:
        """List, then watch from there; resume after drops, re-list after `Gone`."""
        failures = 0
        while True:
            try:
                listed = await self.cluster.list(kind)
                for item in listed.items:
                    handle(WatchEvent("ADDED", item))
                rv = listed.resource_version
                while True:
                    try:
                        async for event in self.cluster.watch(kind, resource_version=rv):
                            failures = 0
                            rv = (event.object.get("metadata") or {}).get("resourceVersion") or rv
                            handle(event)
                        # The stream ended (server timeout): resume from the last event seen.
                    except errors.Gone:
                        self.relists[kind.kind] = self.relists.get(kind.kind, 0) + 1
                        log.info("watch of %s expired; re-listing", kind.kind)
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a watch must outlive a flaky API server
                failures += 1
                delay = compute_backoff(failures, self.watch_retry_base, 30.0)
                log.warning("watch of %s failed (%s); retrying in %.1fs", kind.kind, exc, delay)
                await asyncio.sleep(delay)

    def resync(self) -> int:
        """Enqueue every known Workspace (a periodic full pass); returns how many."""
        for key in list(self._selectors):
            self.queue.add(key)
        return len(self._selectors)

    async def _resync_loop(self) -> None:
        assert self.resync_period is not None
        while True:
            await asyncio.sleep(self.resync_period)
            self.resync()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        watches = [(protocol.WORKSPACE, self._on_workspace), (protocol.NODE, self._on_node)]
        watches += [(kind, self._on_owned) for kind in OWNED_WATCHES]
        if self.settings.provisions_nodes:
            watches.append((protocol.NODECLAIM, self._on_owned))
        self._tasks = [
            asyncio.create_task(self._watch(kind, handle), name=f"watch-{kind.kind}")
            for kind, handle in watches
        ]
        self._tasks.append(
            asyncio.create_task(
                run_workers(self.queue, self._reconcile, self.settings.workers, on_failure=self._on_failure,
                            bug_retry_limit=self.settings.bug_retry_limit),
                name="workers",
            )
        )
        if self.resync_period:
            self._tasks.append(asyncio.create_task(self._resync_loop(), name="resync"))

    async def _reconcile(self, key: WorkspaceKey) -> float | None:
        return await self.reconciler.reconcile(key)

    async def _on_failure(self, failure: Failure) -> None:
        self.errors.append(failure)
        if self.failure_observer is not None:
            self.failure_observer.observe_failure(failure)
        key = failure.key
        assert isinstance(key, WorkspaceKey)
        if failure.kind is ErrorKind.TEMPORARY:
            log.warning("reconcile of %s failed, retrying in %.2fs: %s", key, failure.retry_in, failure.error)
            return
        then = "giving up until the Workspace changes" if failure.gave_up else f"retrying in {failure.retry_in:.2f}s"
        log.error("reconcile of %s failed with a bug (attempt %d, %s)", key, failure.attempt, then,
                  exc_info=failure.error)
        involved = {"apiVersion": protocol.WORKSPACE.api_version, "kind": protocol.WORKSPACE.kind,
                    "metadata": {"name": key.name, "namespace": key.namespace}}
        await events.emit_events(self.cluster, involved, [build_failure_event(failure)])

    async def stop(self) -> None:
        """Graceful stop: no new keys, running reconciles finish, watches end."""
        await self.queue.shut_down()
        workers = [t for t in self._tasks if t.get_name() == "workers"]
        others = [t for t in self._tasks if t.get_name() != "workers"]
        for task in others:
            task.cancel()
        for task in others:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in workers:
            await task
        self._tasks = []

    def abort(self) -> None:
        """Stop reconciling now (leadership lost): cancel workers and watches mid-flight.

        Unlike `stop()` nothing is awaited: a replica that lost its Lease must not write again."""
        for task in self._tasks:
            task.cancel()

    @property
    def tasks(self) -> tuple[asyncio.Task, ...]:
        """The watch, worker and resync tasks of the current run (empty after `stop()`)."""
        return tuple(self._tasks)

    async def __aenter__(self) -> Manager:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def wait_idle(self, settle: float = 0.1, timeout: float = 30.0) -> None:
        """Until the queue has been empty for `settle` seconds (tests and benchmarks use this)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_since = None
        while loop.time() < deadline:
            if self.queue.is_idle():
                quiet_since = quiet_since or loop.time()
                if loop.time() - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            await asyncio.sleep(0.01)
        raise TimeoutError("the work queue did not become idle")
