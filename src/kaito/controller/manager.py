"""The manager: watches that feed the one shared work queue, and the workers that drain it.

Several kinds are reconciled (ARCHITECTURE: one reconciler per kind, one shared work queue); each
plugs in as a `watching.KindController` - its reconciler, the class of its queue keys and its
watches with their event → key mappings (`workspace_watches` for Workspaces). The manager runs one
watch per resource kind, however many kinds need it, and fans each event out to every mapping
(and first to the event observers registered for that resource kind). A worker hands a key to the
reconciler of its kind. Each watch lists first, then watches from the list's resourceVersion,
resumes from the last event it saw, and re-lists when told `Gone`. A resync enqueues every known
object of every kind; with nothing changed it costs reads only, never a write.

A failed reconcile is handled by kind of error (`errors`): a temporary one is logged and retried;
a bug is logged with its traceback, recorded as a Warning event on the object reconciled
(`kaito describe` shows it), and retried at most `Settings.bug_retry_limit` times.

The operator hooks in through public seams only - the controllers, event observers per resource
kind, a hook around every reconcile, a work-queue observer, a failure observer and `abort()` - so
the manager's internals can change without breaking it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Protocol

from kaito.cluster import errors, protocol
from kaito.cluster.protocol import Cluster, ResourceKind, WatchEvent
from kaito.controller import events
from kaito.controller.errors import ErrorKind, Failure
from kaito.controller.inferenceset.watches import InferenceSetController
from kaito.controller.queue import QueueObserver, WorkQueue, compute_backoff, run_workers
from kaito.controller.ragengine.target import ServiceEndpoints
from kaito.controller.ragengine.watches import RAGEngineController
from kaito.controller.settings import Settings
from kaito.controller.watching import KindController, KindReconciler, Watch
from kaito.controller.workspace_watches import WorkspaceController, WorkspaceEventObserver

log = logging.getLogger(__name__)

# Called with every watch event of one resource kind (listed items arrive as ADDED), before mapping.
EventObserver = Callable[[WatchEvent], None]
# Runs one reconcile (`call()`) of `key` for `controller`: the operator times and tags it.
AroundReconcile = Callable[[KindController, Hashable, Callable[[], Awaitable[float | None]]],
                           Awaitable[float | None]]
REASON_RECONCILE_ERROR = "ReconcileError"
KEPT_FAILURES = 100  # the most recent failures kept in `Manager.errors` (tests and debugging)


class FailureObserver(Protocol):
    """Hears every failed reconcile (`OperatorMetrics` counts them by kind)."""

    def observe_failure(self, failure: Failure) -> None: ...


def build_failure_event(failure: Failure, kind: str = protocol.WORKSPACE.kind) -> tuple[str, str, str]:
    """The Warning event a bug leaves on its `kind` object (type, reason, message). The message does
    not carry the attempt number, so repeats aggregate into one Event whose count grows."""
    error = f"{type(failure.error).__name__}: {failure.error}"
    then = (f"not retried until the {kind} changes" if failure.gave_up
            else "retrying with backoff")
    return (events.WARNING, REASON_RECONCILE_ERROR, f"reconcile failed with an internal error ({error}); {then}")


def build_default_controllers(cluster: Cluster, settings: Settings, *,
                              workspace_reconciler: KindReconciler | None = None,
                              endpoints: ServiceEndpoints | None = None) -> list[KindController]:
    """Every kind this operator reconciles, in the order their watches start. `endpoints`: where
    a Service is reached from pods (default: cluster DNS; the local control plane passes its own)."""
    return [WorkspaceController(cluster, settings, reconciler=workspace_reconciler),
            InferenceSetController(cluster, settings),
            RAGEngineController(cluster, settings, endpoints=endpoints)]


class Manager:
    def __init__(
        self,
        cluster: Cluster,
        settings: Settings,
        *,
        controllers: Sequence[KindController] | None = None,
        reconciler: KindReconciler | None = None,
        watch_retry_base: float = 0.2,
        resync_period: float | None = 600.0,
        on_workspace_event: Iterable[WorkspaceEventObserver] = (),
        around_reconcile: AroundReconcile | None = None,
        queue_observer: QueueObserver | None = None,
        failure_observer: FailureObserver | None = None,
    ) -> None:
        """`controllers`: the kinds to reconcile (default: every kind, `build_default_controllers`,
        with `reconciler` as the Workspace reconciler when given)."""
        self.cluster = cluster
        self.settings = settings
        if controllers is None:
            controllers = build_default_controllers(cluster, settings, workspace_reconciler=reconciler)
        elif reconciler is not None:
            raise ValueError("pass either controllers or a Workspace reconciler, not both")
        self.controllers: tuple[KindController, ...] = tuple(controllers)
        self._by_key_type = {c.key_type: c for c in self.controllers}
        if len(self._by_key_type) != len(self.controllers):
            raise ValueError("two controllers share a key type: their keys could not be told apart")
        self.queue = WorkQueue(observer=queue_observer)
        # Observers per resource kind (its `key`), called with every event of that kind.
        self.event_observers: dict[str, list[EventObserver]] = {
            protocol.WORKSPACE.key: list(on_workspace_event)}
        self.around_reconcile = around_reconcile
        self.watch_retry_base = watch_retry_base
        self.resync_period = resync_period
        self._tasks: list[asyncio.Task] = []
        self.relists: dict[str, int] = {}
        self.failure_observer = failure_observer
        self.errors: deque[Failure] = deque(maxlen=KEPT_FAILURES)

    @property
    def on_workspace_event(self) -> list[EventObserver]:
        """The observers of Workspace events (append to add one)."""
        return self.event_observers.setdefault(protocol.WORKSPACE.key, [])

    @property
    def reconciler(self) -> KindReconciler:
        """The Workspace reconciler (the first controller's, by default the Workspace's)."""
        return self.controllers[0].reconciler

    def controller_of(self, key: Hashable) -> KindController:
        return self._by_key_type[type(key)]

    # -- watches -------------------------------------------------------------------------------

    def watches_by_kind(self) -> list[tuple[ResourceKind, list[Watch]]]:
        """One entry per resource kind, in first-asked order, with every mapping that needs it."""
        grouped: dict[str, tuple[ResourceKind, list[Watch]]] = {}
        for controller in self.controllers:
            for watch in controller.watches(provisions_nodes=self.settings.provisions_nodes):
                grouped.setdefault(watch.kind.key, (watch.kind, []))[1].append(watch)
        return list(grouped.values())

    def dispatch(self, kind: ResourceKind, watches: Sequence[Watch], event: WatchEvent) -> None:
        """One watch event: its observers hear it, then every mapping's keys are queued."""
        for observer in self.event_observers.get(kind.key, ()):
            try:
                observer(event)
            except Exception:  # noqa: BLE001 - raising here would make the watch re-list forever
                log.exception("%s event observer %r failed", kind.kind, observer)
        for watch in watches:
            for key in watch.keys_for(event):
                self.queue.add(key)

    async def _watch(self, kind: ResourceKind, watches: Sequence[Watch]) -> None:
        """List, then watch from there; resume after drops, re-list after `Gone`."""
        failures = 0
        while True:
            try:
                listed = await self.cluster.list(kind)
                for item in listed.items:
                    self.dispatch(kind, watches, WatchEvent("ADDED", item))
                rv = listed.resource_version
                while True:
                    try:
                        async for event in self.cluster.watch(kind, resource_version=rv):
                            failures = 0
                            rv = (event.object.get("metadata") or {}).get("resourceVersion") or rv
                            self.dispatch(kind, watches, event)
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
        """Enqueue every known object of every kind (a periodic full pass); returns how many."""
        count = 0
        for controller in self.controllers:
            for key in controller.known_keys():
                self.queue.add(key)
                count += 1
        return count

    async def _resync_loop(self) -> None:
        assert self.resync_period is not None
        while True:
            await asyncio.sleep(self.resync_period)
            self.resync()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._watch(kind, watches), name=f"watch-{kind.kind}")
            for kind, watches in self.watches_by_kind()
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

    async def _reconcile(self, key: Hashable) -> float | None:
        controller = self.controller_of(key)
        if self.around_reconcile is None:
            return await controller.reconciler.reconcile(key)
        return await self.around_reconcile(controller, key, lambda: controller.reconciler.reconcile(key))

    async def _on_failure(self, failure: Failure) -> None:
        controller = self.controller_of(failure.key)
        failure = dataclasses.replace(failure, controller=controller.name)
        self.errors.append(failure)
        if self.failure_observer is not None:
            self.failure_observer.observe_failure(failure)
        key = failure.key
        if failure.kind is ErrorKind.TEMPORARY:
            log.warning("reconcile of %s %s failed, retrying in %.2fs: %s", controller.name, key, failure.retry_in,
                        failure.error)
            return
        then = (f"giving up until the {controller.kind.kind} changes" if failure.gave_up
                else f"retrying in {failure.retry_in:.2f}s")
        log.error("reconcile of %s %s failed with a bug (attempt %d, %s)", controller.name, key, failure.attempt,
                  then, exc_info=failure.error)
        involved = {"apiVersion": controller.kind.api_version, "kind": controller.kind.kind,
                    "metadata": {"name": key.name, "namespace": key.namespace}}  # type: ignore[attr-defined]
        await events.emit_events(self.cluster, involved, [build_failure_event(failure, controller.kind.kind)])

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
