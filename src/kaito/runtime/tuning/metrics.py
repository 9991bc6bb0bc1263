"""Training metrics for machines: JSON lines on stdout, Prometheus gauges, token counting.

Each JSON line is one event: `start` (with the step it resumed from), `log` (step, loss,
learning_rate, samples_per_second, tokens_per_second), `checkpoint`, `warning` (e.g. a checkpoint
that did not load and was set aside), `done`. stdout carries only
these lines, so a Job's log is machine-readable; everything for people goes to stderr. The
Trainer callbacks that feed them live in `callbacks` (they need transformers, this does not).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


def emit(event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """Write one JSON-lines event and flush, so a reader (or a kill) never sees half a line."""
    out = stream or sys.stdout
    out.write(json.dumps({"event": event, "time": round(time.time(), 3), **fields}) + "\n")
    out.flush()


class Gauges:
    """Prometheus gauges served on `--metrics-port`, in a registry of their own."""

    def __init__(self, port: int, addr: str = "0.0.0.0"):
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        self.registry = CollectorRegistry()
        names = {"step": "optimizer steps done", "loss": "latest training loss",
                 "learning_rate": "current learning rate", "samples_per_second": "training samples per second",
                 "tokens_per_second": "training tokens per second", "epoch": "epochs done (fractional)"}
        self.gauges = {k: Gauge(f"kaito_tuning_{k}", doc, registry=self.registry) for k, doc in names.items()}
        self.server, self.thread = start_http_server(port, addr=addr, registry=self.registry)

    @property
    def port(self) -> int:
        return self.server.server_port

    def set(self, values: dict[str, Any]) -> None:
        for key, gauge in self.gauges.items():
            if isinstance(values.get(key), int | float):
                gauge.set(values[key])

    def close(self) -> None:
        self.server.shutdown()
