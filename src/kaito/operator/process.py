"""`kaito operator`: the controller as a long-running, production process.

It wires what a cluster deployment needs around the manager: Lease-based leader election (only
the leader runs the manager; losing the Lease stops reconciling at once and the process exits
non-zero so Kubernetes restarts it as a standby, as controller-runtime does), the probe and
metrics endpoints, structured JSON logs that carry the Workspace's name and namespace (`logs`),
the admission webhook in every replica, and a graceful SIGTERM: in-flight reconciles finish, the
Lease is released, and the process is gone within `shutdown_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kaito.cluster import protocol
from kaito.cluster.protocol import WatchEvent
from kaito.controller.manager import Manager
from kaito.controller.observe import WorkspaceKey
from kaito.controller.settings import Settings
from kaito.controller.watching import KindController
from kaito.operator import logs
from kaito.operator import metrics as operator_metrics
from kaito.operator.leader_election import LeaderElector, LeaseConfig
from kaito.operator.signals import install_stop_signals
from kaito.operator.webhook import WebhookSettings, build_webhook_server

log = logging.getLogger("kaito.operator")

EXIT_OK, EXIT_LEADERSHIP_LOST, EXIT_STARTUP_FAILED = 0, 1, 2


@dataclass(frozen=True, kw_only=True)
class OperatorConfig:
    settings: Settings = field(default_factory=Settings)
    leader_elect: bool = False
    lease: LeaseConfig = field(default_factory=LeaseConfig)
    metrics_address: tuple[str, int] | None = ("0.0.0.0", 8080)
    probe_address: tuple[str, int] | None = ("0.0.0.0", 8081)
    shutdown_timeout: float = 8.0  # SIGTERM → exit well inside 10 s, Lease released
    resync_period: float | None = 600.0
    webhook: WebhookSettings | None = None  # None: no admission webhook in this process


# -- the manager, instrumented ---------------------------------------------------------------------


async def _measured(metrics: operator_metrics.OperatorMetrics, controller: KindController, key: Hashable,
                    call: Callable[[], Awaitable[float | None]]) -> float | None:
    """One reconcile, timed, its result counted, every log line inside it tagged with the object."""
    started = time.monotonic()
    try:
        with logs.tagged(key, controller.name):
            requeue = await call()
    except Exception:
        metrics.observe_reconcile(time.monotonic() - started, "error", controller.name)
        raise
    metrics.observe_reconcile(time.monotonic() - started, "success" if requeue is None else "requeue_after",
                              controller.name)
    return requeue


class OperatorManager(Manager):
    """The controller's manager plus what the operator reports: reconcile, failure and queue
    metrics, and the conditions of watched Workspaces - all through the manager's public hooks."""

    def __init__(self, cluster: protocol.Cluster, settings: Settings, metrics: operator_metrics.OperatorMetrics,
                 **kwargs: Any) -> None:
        super().__init__(cluster, settings, around_reconcile=functools.partial(_measured, metrics),
                         queue_observer=metrics, failure_observer=metrics, **kwargs)
        self._conditions: dict[WorkspaceKey, list[Mapping[str, Any]]] = {}
        self.on_workspace_event.append(self._record_conditions)
        metrics.set_condition_source(self.condition_counts)

    def _record_conditions(self, event: WatchEvent) -> None:
        meta = event.object.get("metadata") or {}
        key = WorkspaceKey(meta.get("namespace") or protocol.DEFAULT_NAMESPACE, meta.get("name") or "")
        if event.type == "DELETED":
            self._conditions.pop(key, None)
        else:
            self._conditions[key] = list((event.object.get("status") or {}).get("conditions") or [])

    def condition_counts(self) -> dict[tuple[str, str], int]:
        snapshot = list(self._conditions.values())  # called from the metrics thread: copy first
        return operator_metrics.compute_condition_counts({"status": {"conditions": c}} for c in snapshot)


# -- the process -----------------------------------------------------------------------------------


class Operator:
    def __init__(self, cluster: protocol.Cluster, cfg: OperatorConfig, *,
                 metrics: operator_metrics.OperatorMetrics | None = None) -> None:
        self.cluster = cluster
        self.cfg = cfg
        self.metrics = metrics or operator_metrics.OperatorMetrics()
        self.webhook = (None if cfg.webhook is None else
                        build_webhook_server(cluster, cfg.webhook, on_result=self.metrics.count_admission))
        self.manager: OperatorManager | None = None
        self.elector: LeaderElector | None = None
        self._probes: list[operator_metrics.ProbeServer] = []
        self._heartbeat = time.monotonic()
        self._shutting_down = False

    # probes: called from the probe server's threads
    def healthy(self) -> bool:
        return time.monotonic() - self._heartbeat < 30.0  # the event loop is not stuck

    def ready(self) -> bool:
        return not self._shutting_down and (self.webhook is None or self.webhook.serving)

    @property
    def probe_ports(self) -> list[int]:
        return [p.port for p in self._probes]

    async def run(self, stop: asyncio.Event) -> int:
        """Run until `stop` is set (SIGTERM) or leadership is lost; returns the exit code."""
        try:
            self._start_endpoints()
            if self.webhook is not None:
                await self.webhook.start()
        except Exception as exc:
            log.error("operator failed to start: %s", exc)
            await self._stop_endpoints_and_webhook()
            return EXIT_STARTUP_FAILED
        beat = asyncio.create_task(self._beat(), name="heartbeat")
        try:
            return await self._run_controller(stop)
        finally:
            beat.cancel()
            await self._stop_endpoints_and_webhook()

    async def _run_controller(self, stop: asyncio.Event) -> int:
        stopping = asyncio.create_task(stop.wait(), name="wait-for-stop")
        if not self.cfg.leader_elect:
            lead = asyncio.create_task(self._lead(), name="manager")
            await asyncio.wait({stopping, lead}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if lead.done() and not lead.cancelled() and lead.exception() is not None:
                log.error("controller failed: %s", lead.exception())
                return EXIT_STARTUP_FAILED
            await self._graceful_stop(lead)
            return EXIT_OK
        self.elector = LeaderElector(self.cluster, self.cfg.lease)
        election = asyncio.create_task(self.elector.run(self._lead, self._on_leadership_lost), name="election")
        await asyncio.wait({stopping, election}, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            stopping.cancel()
            if not election.cancelled() and election.exception() is not None:
                log.error("leader election failed: %s", election.exception())
            log.error("leadership lost; exiting so that Kubernetes restarts this replica as a standby")
            return EXIT_LEADERSHIP_LOST
        # SIGTERM: finish in-flight reconciles, then give the Lease back so a standby starts now.
        await self._graceful_stop(None)
        self.elector.stop()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(election, timeout=2.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.elector.release(), timeout=2.0)
        return EXIT_OK

    async def _lead(self) -> None:
        self.metrics.leader.set(1)
        self.manager = OperatorManager(self.cluster, self.cfg.settings, self.metrics,
                                       resync_period=self.cfg.resync_period)
        await self.manager.start()
        log.info("controller started", extra={"workers": self.cfg.settings.workers})
        try:
            await asyncio.Event().wait()  # until cancelled (leadership lost) or stopped gracefully
        except asyncio.CancelledError:
            if not self._shutting_down:
                self.manager.abort()
            raise

    def _on_leadership_lost(self) -> None:
        self.metrics.leader.set(0)
        if self.manager is not None and not self._shutting_down:
            self.manager.abort()

    async def _graceful_stop(self, lead: asyncio.Task | None) -> None:
        self._shutting_down = True
        budget = max(1.0, self.cfg.shutdown_timeout - 4.0)  # leave time to release the Lease
        if self.manager is not None:
            try:
                await asyncio.wait_for(self.manager.stop(), timeout=budget)
                log.info("controller stopped; in-flight reconciles finished")
            except TimeoutError:
                log.warning("reconciles still running after %.1fs; abandoning them", budget)
                self.manager.abort()
        if lead is not None:
            lead.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lead
        self.metrics.leader.set(0)

    def _start_endpoints(self) -> None:
        addresses: dict[tuple[str, int], dict[str, Any]] = {}
        if self.cfg.metrics_address is not None:
            addresses.setdefault(self.cfg.metrics_address, {})["metrics"] = self.metrics
        if self.cfg.probe_address is not None:
            addresses.setdefault(self.cfg.probe_address, {})["ready"] = self.ready
        for (host, port), roles in addresses.items():
            server = operator_metrics.ProbeServer(host, port, metrics=roles.get("metrics"), ready=roles.get("ready"),
                                                  healthy=self.healthy)
            server.start()
            self._probes.append(server)

    async def _stop_endpoints_and_webhook(self) -> None:
        self._shutting_down = True
        if self.webhook is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.webhook.stop(), timeout=2.0)
        for server in self._probes:
            server.stop()
        self._probes = []

    async def _beat(self) -> None:
        while True:
            self._heartbeat = time.monotonic()
            await asyncio.sleep(1.0)


def run_until_signalled(make_operator: Callable[[], Operator], cluster_close: Callable[[], Any]) -> int:
    """Run the operator in a fresh event loop; SIGTERM/SIGINT start the graceful shutdown."""

    async def main() -> int:
        stop = asyncio.Event()
        install_stop_signals(stop)
        try:
            return await make_operator().run(stop)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(cluster_close(), timeout=1.0)

    return asyncio.run(main())
