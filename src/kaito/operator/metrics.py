"""The operator's Prometheus metrics and its probe/metrics HTTP endpoints.

Names follow controller-runtime (`controller_runtime_reconcile_total`, `workqueue_depth`, ...) so
dashboards and alerts written for KAITO's Go operator keep working. Failed reconciles are counted
twice on purpose: `controller_runtime_reconcile_errors_total{controller}` exactly as
controller-runtime defines it (those dashboards), and `kaito_reconcile_errors_total{controller,kind}`
split by kind (`temporary`: retried until it passes; `bug`: an internal error, retried with a cap),
since adding a label to controller-runtime's metric would change what its users' queries match. Each operator owns its own
`CollectorRegistry` (no module-level globals), so two in-process operators in a test never share
counters. Workspace counts per condition are computed at scrape time from a callback, so they are
never stale. The endpoints are served by the standard library's threaded HTTP server, as
prometheus_client's own exporter is: probes must answer even while the event loop is busy.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from kaito.controller.errors import Failure

# The Workspace controller's name; also the name of the one shared work queue (`workqueue_*{name}`),
# kept as it was before other kinds joined the queue, so existing dashboards still find it.
CONTROLLER = "workspace"
# (condition type, status) -> number of Workspaces; computed from the watched Workspaces.
ConditionCounts = Mapping[tuple[str, str], int]


class OperatorMetrics:
    """The operator's metrics. Call sites: the work queue, the reconcile loop, the leader elector."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconcile_total = Counter("controller_runtime_reconcile_total", "Reconciles by result.",
                                       ["controller", "result"], registry=r)
        self.reconcile_errors = Counter("controller_runtime_reconcile_errors_total", "Reconciles that failed.",
                                        ["controller"], registry=r)
        self.reconcile_time = Histogram("controller_runtime_reconcile_time_seconds", "Time per reconcile.",
                                        ["controller"], registry=r,
                                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.reconcile_errors_by_kind = Counter("kaito_reconcile_errors_total",
                                                "Failed reconciles by kind: temporary (retried) or bug (retried "
                                                "with a cap).", ["controller", "kind"], registry=r)
        self.queue_depth = Gauge("workqueue_depth", "Keys waiting in the work queue.", ["name"], registry=r)
        self.queue_latency = Histogram("workqueue_queue_duration_seconds",
                                       "Time a key waits in the queue before a worker takes it.", ["name"],
                                       registry=r, buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60))
        self.leader = Gauge("kaito_leader_election_is_leader", "1 while this replica holds the Lease.",
                            registry=r)
        self.webhook_requests = Counter("kaito_webhook_admission_total", "Admission reviews by result.",
                                        ["operation", "allowed"], registry=r)
        self._condition_source: Callable[[], ConditionCounts] | None = None
        r.register(_ConditionCollector(self))

    def observe_reconcile(self, seconds: float, result: str, controller: str = CONTROLLER) -> None:
        """`result` is controller-runtime's: success | error | requeue | requeue_after; `controller`
        the kind reconciled (workspace, ragengine, ...)."""
        self.reconcile_total.labels(controller, result).inc()
        self.reconcile_time.labels(controller).observe(seconds)
        if result == "error":
            self.reconcile_errors.labels(controller).inc()

    def observe_failure(self, failure: Failure) -> None:
        """A failed reconcile, by kind of error (`kaito.controller.errors`) and controller."""
        self.reconcile_errors_by_kind.labels(failure.controller, str(failure.kind)).inc()

    def count_admission(self, operation: str, allowed: bool) -> None:
        """One admission review answered by the webhook."""
        self.webhook_requests.labels(operation, str(allowed).lower()).inc()

    def set_queue_depth(self, depth: int) -> None:
        self.queue_depth.labels(CONTROLLER).set(depth)

    def observe_queue_latency(self, seconds: float) -> None:
        self.queue_latency.labels(CONTROLLER).observe(seconds)

    def set_condition_source(self, source: Callable[[], ConditionCounts]) -> None:
        self._condition_source = source

    def render(self) -> bytes:
        return generate_latest(self.registry)


def compute_condition_counts(workspaces: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """How many Workspaces have each (condition type, status) (pure)."""
    counts: dict[tuple[str, str], int] = {}
    for ws in workspaces:
        for cond in (ws.get("status") or {}).get("conditions") or []:
            key = (str(cond.get("type", "")), str(cond.get("status", "Unknown")))
            counts[key] = counts.get(key, 0) + 1
    return counts


class _ConditionCollector:
    def __init__(self, metrics: OperatorMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> list:
        return []  # dynamic: do not call the source at registration time

    def collect(self):
        family = GaugeMetricFamily("kaito_workspaces", "Workspaces per condition type and status.",
                                   labels=["condition", "status"])
        source = self._metrics._condition_source
        if source is not None:
            for (cond, status), n in sorted(source().items()):
                family.add_metric([cond, status], n)
        yield family


class ProbeServer:
    """Serves `/healthz`, `/readyz` and `/metrics` on one address (KAITO uses :8081 and :8080).

    Pass `metrics=None` for a probe-only server and `ready=None` for a metrics-only one; both may
    share a port. `ready()` is called per request and must be cheap and thread-safe.
    """

    def __init__(self, host: str, port: int, *, metrics: OperatorMetrics | None,
                 ready: Callable[[], bool] | None, healthy: Callable[[], bool] | None = None) -> None:
        handler = _make_handler(metrics, ready, healthy)
        self._server = http.server.ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"probes:{port}", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def parse_bind_address(value: str) -> tuple[str, int] | None:
    """`:8080` → ("0.0.0.0", 8080); `127.0.0.1:0` → ("127.0.0.1", 0); `0` → None (disabled)."""
    if value in ("0", ""):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bind address must look like HOST:PORT or :PORT, got {value!r}")
    return (host or "0.0.0.0", int(port))


def _make_handler(metrics: OperatorMetrics | None, ready: Callable[[], bool] | None,
                  healthy: Callable[[], bool] | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/metrics" and metrics is not None:
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz" and ready is not None:
                ok = healthy() if healthy is not None else True
                self._send(200 if ok else 500, b"ok" if ok else b"unhealthy", "text/plain")
            elif path == "/readyz" and ready is not None:
                ok = ready()
                self._send(200 if ok else 503, b"ok" if ok else b"not ready", "text/plain")
            else:
                self._send(404, json.dumps({"error": "not found"}).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: stay quiet
            return

    return Handler
