"""Leader election over a `coordination.k8s.io/v1` Lease, through the `Cluster` protocol.

Several operator replicas may run (a rolling update, an HA install); only one may reconcile, or
two would race to create the same NodeClaims. Like client-go's leaderelection, the Lease records
`holderIdentity`, `leaseDurationSeconds`, `acquireTime`, `renewTime` and `leaseTransitions`; every
write carries the resourceVersion we last read, so the API server's optimistic concurrency decides
races: `Conflict` means someone else wrote first, and we are not (or no longer) the leader.

Expiry is judged on the *local* monotonic clock from the moment we last saw the record change,
never by comparing our wall clock with another node's `renewTime` (clocks drift between nodes).
A fresh Lease is created with a per-candidate field manager and `force=False`, so two candidates
that both find no Lease cannot both create it: the second gets `Conflict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kaito.cluster import errors, protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseConfig:
    name: str = "kaito-operator-leader"
    namespace: str = "kaito-workspace"
    identity: str = "kaito"
    # client-go's defaults: 15 s lease, give up renewing after 10 s, try every 2 s.
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def build_lease(cfg: LeaseConfig, *, holder: str, now: dt.datetime, acquire_time: str | None,
                transitions: int, resource_version: str | None) -> dict[str, Any]:
    """The Lease object to apply (pure). An empty `holder` releases it."""
    meta: dict[str, Any] = {"name": cfg.name, "namespace": cfg.namespace}
    if resource_version:
        meta["resourceVersion"] = resource_version
    stamp = format_micro_time(now)
    spec: dict[str, Any] = {
        "holderIdentity": holder,
        "leaseDurationSeconds": max(1, round(cfg.lease_duration)),
        "renewTime": stamp,
        "acquireTime": acquire_time or stamp,
        "leaseTransitions": transitions,
    }
    return {"apiVersion": protocol.LEASE.api_version, "kind": protocol.LEASE.kind, "metadata": meta, "spec": spec}


def format_micro_time(when: dt.datetime) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds, in UTC."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquires and renews the Lease; tells the caller when it gains and loses leadership.

    `run(on_started, on_stopped)` returns when leadership is lost or `stop()` was called;
    `on_started` runs as a task that is cancelled the moment leadership is lost.
    """

    def __init__(self, cluster: protocol.Cluster, cfg: LeaseConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cluster = cluster
        self._cfg = cfg
        self._clock = clock
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._resource_version: str | None = None
        self._leading = False
        self._stopping = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def field_manager(self) -> str:
        return f"kaito-leader-election/{self._cfg.identity}"[:128]

    def stop(self) -> None:
        """Ask `run` to return; the caller then calls `release()`."""
        self._stopping.set()

    async def run(self, on_started: Callable[[], Awaitable[None]],
                  on_stopped: Callable[[], None] | None = None) -> None:
        if not await self._acquire():
            return
        self._leading = True
        log.info("became leader", extra={"lease": self._cfg.name, "identity": self._cfg.identity})
        work = asyncio.create_task(on_started(), name="leader-work")
        try:
            await self._renew_until_lost(work)
        finally:
            self._leading = False
            if not work.done():
                work.cancel()
            if on_stopped is not None:
                on_stopped()

    async def release(self) -> bool:
        """Clear the holder so a standby takes over at once; True when released."""
        if self._resource_version is None or not self._observed_spec:
            return False
        if self._observed_spec.get("holderIdentity") != self._cfg.identity:
            return False
        lease = build_lease(self._cfg, holder="", now=dt.datetime.now(dt.UTC),
                            acquire_time=self._observed_spec.get("acquireTime"),
                            transitions=int(self._observed_spec.get("leaseTransitions") or 0),
                            resource_version=self._resource_version)
        lease["spec"]["leaseDurationSeconds"] = 1
        try:
            stored = await self._cluster.apply(lease, field_manager=self.field_manager, force=True)
        except errors.ClusterError as exc:
            log.warning("could not release the lease: %s", exc)
            return False
        self._remember(stored)
        log.info("released leadership", extra={"lease": self._cfg.name, "identity": self._cfg.identity})
        return True

    async def _acquire(self) -> bool:
        while not self._stopping.is_set():
            try:
                if await self._try_acquire_or_renew():
                    return True
            except errors.ClusterError as exc:
                log.info("lease not acquired: %s", exc)
            if await self._sleep(self._cfg.retry_period):
                return False
        return False

    async def _renew_until_lost(self, work: asyncio.Task) -> None:
        last_renew = self._clock()
        while not self._stopping.is_set():
            if await self._sleep(self._cfg.retry_period, work):
                return
            if work.done():
                return  # the manager ended on its own (crash or stop); nothing left to lead
            try:
                if await self._try_acquire_or_renew():
                    last_renew = self._clock()
                    continue
                log.warning("leadership lost to %s", (self._observed_spec or {}).get("holderIdentity"))
                return
            except errors.Conflict:
                log.warning("leadership lost: the lease changed under us")
                return
            except errors.ClusterError as exc:
                if self._clock() - last_renew >= self._cfg.renew_deadline:
                    log.error("could not renew the lease for %.1fs: %s", self._cfg.renew_deadline, exc)
                    return

    async def _try_acquire_or_renew(self) -> bool:
        now = dt.datetime.now(dt.UTC)
        try:
            current = await self._cluster.get(protocol.LEASE, self._cfg.name, self._cfg.namespace)
        except errors.NotFound:
            lease = build_lease(self._cfg, holder=self._cfg.identity, now=now, acquire_time=None,
                                transitions=0, resource_version=None)
            # force=False: of two candidates creating at once, the second gets Conflict.
            self._remember(await self._cluster.apply(lease, field_manager=self.field_manager, force=False))
            return True
        self._remember(current)
        spec = self._observed_spec or {}
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or self._cfg.lease_duration)
        held_by_other = holder not in ("", self._cfg.identity)
        if held_by_other and self._clock() - self._observed_at < duration:
            return False
        same_holder = holder == self._cfg.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if same_holder else 1)
        lease = build_lease(self._cfg, holder=self._cfg.identity, now=now,
                            acquire_time=spec.get("acquireTime") if same_holder else None,
                            transitions=transitions, resource_version=self._resource_version)
        self._remember(await self._cluster.apply(lease, field_manager=self.field_manager, force=True))
        return True

    def _remember(self, lease: dict[str, Any]) -> None:
        spec = dict(lease.get("spec") or {})
        if spec != self._observed_spec:
            self._observed_spec = spec
            self._observed_at = self._clock()
        self._resource_version = (lease.get("metadata") or {}).get("resourceVersion")

    async def _sleep(self, seconds: float, work: asyncio.Task | None = None) -> bool:
        """Wait `seconds`; True when asked to stop (or `work` ended) meanwhile."""
        waits: set[asyncio.Future] = {asyncio.ensure_future(self._stopping.wait())}
        if work is not None:
            waits.add(work)
        done, pending = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for fut in pending:
            if fut is not work:
                fut.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await fut
        return self._stopping.is_set() or (work is not None and work in done)
