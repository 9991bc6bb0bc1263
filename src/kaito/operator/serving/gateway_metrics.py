"""The gateway's own Prometheus metrics, served on its `/metrics` (the replicas keep theirs).

Names start with `kaito_gateway_`; per-replica series carry `backend=<replica name>`. Outstanding
requests and ejections are read from the gateway at scrape time (a collector, not a gauge kept in
step), so a replica that left the set leaves no stale series. Each gateway owns its registry: two
sets in one process never share counters. The autoscaler adds its series to the same registry
(`kaito_autoscaler_*`), so one scrape of a set's endpoint shows both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.upstream = Counter("kaito_gateway_backend_requests", "Requests sent to each replica, by its answer "
                                "(HTTP status, or `error` when it could not be reached or timed out).",
                                ["backend", "code"], registry=r)
        self.ejections = Counter("kaito_gateway_backend_ejections", "Times a replica was taken out after a failure.",
                                 ["backend"], registry=r)
        self.responses = Counter("kaito_gateway_responses", "Answers to proxied requests, by HTTP status "
                                 "(`aborted`: cut off midway).", ["code"],
                                 registry=r)
        self.retries = Counter("kaito_gateway_retries", "Requests sent again to another replica.", registry=r)
        self.affinity = Counter("kaito_gateway_prefix_affinity", "Requests placed by their prompt prefix "
                                "(`hit`) or by load alone (`load`).", ["placed_by"], registry=r)
        self.held = Gauge("kaito_gateway_held_requests", "Requests waiting for a replica to become ready.",
                          registry=r)
        self.wakeups = Counter("kaito_gateway_wakeups", "Times the gateway asked for a replica (scale from zero).",
                               registry=r)
        self.client_gone = Counter("kaito_gateway_client_disconnects", "Requests whose client hung up first.",
                                   registry=r)

    def watch_backends(self, outstanding: Callable[[], Mapping[str, int]],
                       ejected: Callable[[], Mapping[str, bool]]) -> None:
        """Report per-replica outstanding requests and ejection state, read at scrape time."""
        self.registry.register(_BackendCollector(outstanding, ejected))


class _BackendCollector:
    def __init__(self, outstanding: Callable[[], Mapping[str, int]],
                 ejected: Callable[[], Mapping[str, bool]]) -> None:
        self._outstanding = outstanding
        self._ejected = ejected

    def describe(self):  # no samples at registration: the callbacks may not be ready yet
        return []

    def collect(self):
        load = GaugeMetricFamily("kaito_gateway_backend_outstanding_requests",
                                 "Requests in flight to each replica.", labels=["backend"])
        for name, count in sorted(self._outstanding().items()):
            load.add_metric([name], count)
        out = GaugeMetricFamily("kaito_gateway_backend_ejected", "1 while a replica is taken out.",
                                labels=["backend"])
        for name, flag in sorted(self._ejected().items()):
            out.add_metric([name], 1.0 if flag else 0.0)
        yield load
        yield out
