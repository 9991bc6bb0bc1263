"""The autoscaler loop: KEDA's polling and HPA's write, around the pure `decide.decide`.

Every `interval_s` (KEDA's pollingInterval as keda-kaito-scaler sets it: 15 s), or at once when
the gateway calls `wake`: read the scale target (`spec.replicas`, `readyReplicas`), scrape the
ready replicas' `/metrics`, decide, and write `spec.replicas` when it changes. A failed read or
write is logged and the state is kept as it was (the next tick decides again from fresh facts):
the loop never dies of a bad tick. `tick` is public so tests drive it with their own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge

from kaito.operator.serving.decide import Decision, Observation, ScalerState, decide
from kaito.operator.serving.policy import ScalePolicy
from kaito.operator.serving.replicas import Demand, ReplicaPool, ScaleTarget
from kaito.operator.serving.scrape import scrape_replicas

log = logging.getLogger("kaito.autoscaler")

POLLING_INTERVAL_S = 15.0
SCRAPE_TIMEOUT_S = 3.0  # keda-kaito-scaler's default scrape timeout


class AutoscalerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.desired = Gauge("kaito_autoscaler_desired_replicas", "Replicas the autoscaler last asked for.",
                             registry=registry)
        self.value = Gauge("kaito_autoscaler_metric_value", "Each policy metric as last aggregated "
                           "(NaN while unavailable).", ["metric"], registry=registry)
        self.changes = Counter("kaito_autoscaler_scale_changes", "Changes of spec.replicas, by reason.",
                               ["reason"], registry=registry)
        self.failures = Counter("kaito_autoscaler_tick_failures", "Ticks that could not read or write the scale.",
                                registry=registry)


class Autoscaler:
    """Scales one set. Implements the gateway's `Waker`."""

    def __init__(self, policy: ScalePolicy, target: ScaleTarget, pool: ReplicaPool, *,
                 demand: Callable[[], Demand] = Demand, interval_s: float = POLLING_INTERVAL_S,
                 scrape_timeout_s: float = SCRAPE_TIMEOUT_S, clock: Callable[[], float] = time.monotonic,
                 metrics: AutoscalerMetrics | None = None, name: str = "") -> None:
        problems = policy.check()
        if problems:
            raise ValueError("; ".join(map(str, problems)))
        self.policy = policy
        self.target = target
        self.pool = pool
        self.demand = demand
        self.interval_s = interval_s
        self.scrape_timeout_s = scrape_timeout_s
        self.clock = clock
        self.name = name
        self.state = ScalerState()
        self.last_decision: Decision | None = None
        self.metrics = metrics or AutoscalerMetrics(CollectorRegistry())
        self._wake = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    def set_policy(self, policy: ScalePolicy) -> None:
        """A changed policy starts from a fresh state when its metrics changed (their history means
        nothing under other rules); windows and bounds apply from the next tick."""
        problems = policy.check()
        if problems:
            raise ValueError("; ".join(map(str, problems)))
        if policy.metrics != self.policy.metrics:
            self.state = ScalerState()
        self.policy = policy

    def wake(self) -> None:
        """Tick now rather than at the next interval (the gateway holds a request)."""
        self._wake.set()

    async def run(self) -> None:
        """Tick until cancelled."""
        try:
            while True:
                self._wake.clear()
                try:
                    await self.tick()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a tick's failure must not stop the loop
                    self.metrics.failures.inc()
                    log.warning("autoscaler %s: tick failed: %s", self.name, exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval_s):
                        await self._wake.wait()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def tick(self) -> Decision:
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False)
        scale = await self.target.read_scale()
        ready = self.pool.ready()
        samples = await scrape_replicas(self._client, ready, self.policy.metrics, self.scrape_timeout_s) if ready else {}
        observation = Observation(now=self.clock(), spec_replicas=scale.spec_replicas,
                                  ready_replicas=scale.ready_replicas, samples=samples, demand=self.demand())
        decision, state = decide(self.policy, self.state, observation)
        if decision.replicas != scale.spec_replicas:
            await self.target.set_replicas(decision.replicas)
            self.metrics.changes.labels(decision.reason).inc()
            log.info("autoscaler %s: %s", self.name, decision.describe(scale.spec_replicas))
        self.state = state
        self.last_decision = decision
        self.metrics.desired.set(decision.replicas)
        for metric, value in decision.values.items():
            self.metrics.value.labels(metric).set(float("nan") if value is None else value)
        return decision
