"""Prometheus metrics at `/metrics`, named after vLLM's so existing dashboards work.

KAITO v0.3.2 served JSON (GPU/CPU load) at `/metrics`; v0.12 serves vLLM's Prometheus text.
We serve Prometheus text with these names (labels `model_name` as vLLM has them):

| ours                                         | vLLM equivalent                              |
|----------------------------------------------|----------------------------------------------|
| `vllm:request_success_total{finished_reason}`| same                                         |
| `vllm:prompt_tokens_total`                   | same                                         |
| `vllm:generation_tokens_total`               | same                                         |
| `vllm:time_to_first_token_seconds` (hist.)   | same                                         |
| `vllm:inter_token_latency_seconds` (hist.)   | same (older: `vllm:time_per_output_token_seconds`) |
| `vllm:e2e_request_latency_seconds` (hist.)   | same                                         |
| `vllm:num_requests_running` (gauge)          | same                                         |
| `vllm:num_requests_waiting` (gauge)          | same                                         |
| `http_requests_total{handler,method,status}` | same (vLLM's prometheus-fastapi-instrumentator) |
| `kaito:batch_size` (hist., rows per decode step) | none: vLLM exposes no per-step batch size |
| `kaito:model_load_seconds` (gauge)           | none (vLLM logs its load time)               |
| `kaito:prefill_batches_total`, `kaito:prefill_rows_total` | none: prefill passes and the rows they started (mean prefill batch = rows / batches) |
| `kaito_ratelimit_rejected_total`             | KAITO v0.12's 429 guard counter (same name)  |

Each server owns its own `CollectorRegistry`, so several servers in one process (tests) never
clash over global metric names.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kaito.runtime.inference.engine import EngineStats

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                    7.5, 10.0, 20.0, 40.0, 80.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """Every metric the server exports, in a private registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        self.model_name = model_name
        r = self.registry
        self.http_requests = Counter("http_requests", "HTTP requests by handler, method and status",
                                     ["handler", "method", "status"], registry=r)
        self.request_success = Counter("vllm:request_success", "Finished requests by finish reason",
                                       ["model_name", "finished_reason"], registry=r)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "Prompt tokens processed", ["model_name"], registry=r)
        self.generation_tokens = Counter("vllm:generation_tokens", "Tokens generated", ["model_name"],
                                         registry=r)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Time to first token",
                              ["model_name"], buckets=_LATENCY_BUCKETS, registry=r)
        self.itl = Histogram("vllm:inter_token_latency_seconds", "Time between two output tokens",
                             ["model_name"], buckets=_LATENCY_BUCKETS, registry=r)
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "Request latency, arrival to last token",
                             ["model_name"], buckets=_LATENCY_BUCKETS, registry=r)
        self.running = Gauge("vllm:num_requests_running", "Requests in the running batch", ["model_name"],
                             registry=r)
        self.waiting = Gauge("vllm:num_requests_waiting", "Requests waiting for a batch slot", ["model_name"],
                             registry=r)
        self.batch_size = Histogram("kaito:batch_size", "Rows in each decode step", ["model_name"],
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.rate_limited = Counter("kaito_ratelimit_rejected", "Requests refused with HTTP 429 (queue full)",
                                    registry=r)
        self.load_seconds = Gauge("kaito:model_load_seconds", "Seconds the model took to load", ["model_name"],
                                  registry=r)

    def bind_engine_stats(self, stats: Callable[[], EngineStats]) -> None:
        """Read running/waiting and the prefill counters from the engine at scrape time (no polling thread)."""
        self.running.labels(self.model_name).set_function(lambda: stats().running)
        self.waiting.labels(self.model_name).set_function(lambda: stats().waiting)
        self.registry.register(_PrefillCounters(self.model_name, stats))

    def observe_step(self, batch_size: int) -> None:
        self.batch_size.labels(self.model_name).observe(batch_size)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _PrefillCounters:
    """The engine's own prefill counters, exported as counters (the engine counts; we only read)."""

    def __init__(self, model_name: str, stats: Callable[[], EngineStats]) -> None:
        self._model_name = model_name
        self._stats = stats

    def describe(self):
        return []  # values are read at scrape time only

    def collect(self):
        now = self._stats()
        for name, text, value in (("kaito:prefill_batches", "Forward passes that prefilled new rows", now.prefills),
                                  ("kaito:prefill_rows", "Rows started by prefill passes", now.prefilled_rows)):
            family = CounterMetricFamily(name, text, labels=["model_name"])
            family.add_metric([self._model_name], value)
            yield family


class RequestTimer:
    """Times one request's tokens and records them when it ends."""

    def __init__(self, metrics: ServerMetrics, clock: Callable[[], float]) -> None:
        self.metrics = metrics
        self.clock = clock
        self.started = clock()
        self.last: float | None = None

    def token(self, count: int = 1) -> None:
        now = self.clock()
        name = self.metrics.model_name
        if self.last is None:
            self.metrics.ttft.labels(name).observe(now - self.started)
        else:
            self.metrics.itl.labels(name).observe(now - self.last)
        self.last = now
        self.metrics.generation_tokens.labels(name).inc(count)

    def finish(self, reason: str, prompt_tokens: int) -> None:
        name = self.metrics.model_name
        self.metrics.prompt_tokens.labels(name).inc(prompt_tokens)
        self.metrics.request_success.labels(name, reason).inc()
        self.metrics.e2e.labels(name).observe(self.clock() - self.started)
