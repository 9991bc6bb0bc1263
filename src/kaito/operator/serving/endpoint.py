"""One InferenceSet's local serving: its replica pool, its gateway and, with a policy, its autoscaler.

This is the object the local control plane keeps per InferenceSet (the plug-in point of the
later phase): it creates one when a set appears, `update_replicas` from the set's children on every
watch event (ready or not, with their local URLs), `set_policy` when the autoscaling annotations
change, and `stop` when the set is deleted. The gateway and the autoscaler share the pool, the
clock and one metrics registry (the gateway's `/metrics` shows both); the autoscaler is the
gateway's waker, so a request to a set at zero replicas asks for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry

from kaito.operator.serving.autoscaler import POLLING_INTERVAL_S, Autoscaler, AutoscalerMetrics
from kaito.operator.serving.gateway import Gateway, GatewaySettings
from kaito.operator.serving.gateway_metrics import GatewayMetrics
from kaito.operator.serving.policy import ScalePolicy
from kaito.operator.serving.replicas import Replica, ReplicaPool, ScaleTarget


class InferenceSetEndpoint:
    def __init__(self, settings: GatewaySettings, *, target: ScaleTarget | None = None,
                 policy: ScalePolicy | None = None, interval_s: float = POLLING_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = ReplicaPool()
        self.registry = CollectorRegistry()
        self.gateway = Gateway(settings, self.pool, clock=clock, metrics=GatewayMetrics(self.registry))
        self._target = target
        self._interval_s = interval_s
        self._clock = clock
        self._autoscaler_metrics = AutoscalerMetrics(self.registry)
        self.autoscaler: Autoscaler | None = None
        self._task: asyncio.Task | None = None
        self._started = False
        if policy is not None:
            self._make_autoscaler(policy)

    @property
    def url(self) -> str:
        return self.gateway.url

    async def start(self) -> None:
        await self.gateway.start()
        self._started = True
        self._start_loop()

    async def stop(self) -> None:
        self._started = False
        await self._stop_loop()
        await self.gateway.stop()

    def update_replicas(self, replicas: Iterable[Replica]) -> None:
        self.pool.update(replicas)

    async def set_policy(self, policy: ScalePolicy | None) -> None:
        """Start, change or stop autoscaling (None: the set keeps whatever `spec.replicas` says)."""
        if policy is None:
            await self._stop_loop()
            self.autoscaler = None
            self.gateway.waker = None
        elif self.autoscaler is None:
            self._make_autoscaler(policy)
            self._start_loop()
        else:
            self.autoscaler.set_policy(policy)

    def _make_autoscaler(self, policy: ScalePolicy) -> None:
        if self._target is None:
            raise ValueError("autoscaling needs a scale target")
        self.autoscaler = Autoscaler(policy, self._target, self.pool, demand=self.gateway.demand,
                                     interval_s=self._interval_s, clock=self._clock,
                                     metrics=self._autoscaler_metrics, name=self.gateway.settings.model_name)
        self.gateway.waker = self.autoscaler

    def _start_loop(self) -> None:
        if self._started and self.autoscaler is not None and self._task is None:
            self._task = asyncio.create_task(self.autoscaler.run(), name=f"autoscaler-{self.autoscaler.name}")

    async def _stop_loop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
