"""Training progress for people (a bar on stderr) and for machines (JSON lines on stdout, Prometheus).

Each JSON line is one event: `start` (with the step it resumed from), `log` (step, loss,
learning_rate, samples_per_second, tokens_per_second), `checkpoint`, `done`. stdout carries only
these lines, so a Job's log is machine-readable; everything for people goes to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from transformers import TrainerCallback


def emit(event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """Write one JSON-lines event and flush, so a reader (or a kill) never sees half a line."""
    out = stream or sys.stdout
    out.write(json.dumps({"event": event, "time": round(time.time(), 3), **fields}) + "\n")
    out.flush()


class TokenCountingCollator:
    """Wraps a data collator to count the real (unpadded) tokens the trainer consumes."""

    def __init__(self, inner):
        self.inner = inner
        self.tokens = 0
        self.samples = 0

    def __call__(self, features):
        batch = self.inner(features)
        self.tokens += int(batch["attention_mask"].sum())
        self.samples += len(features)
        return batch


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


class MetricsCallback(TrainerCallback):
    """Turns the Trainer's log calls into JSON-lines events and gauge values."""

    def __init__(self, counter: TokenCountingCollator, gauges: Gauges | None = None, stream: TextIO | None = None):
        self.counter, self.gauges, self.stream = counter, gauges, stream
        self._mark = (time.perf_counter(), 0, 0)

    def on_train_begin(self, args, state, control, **kwargs):
        self._mark = (time.perf_counter(), self.counter.samples, self.counter.tokens)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:  # the end-of-training summary and eval logs have their own events
            return
        now = time.perf_counter()
        then, samples, tokens = self._mark
        elapsed = max(now - then, 1e-9)
        self._mark = (now, self.counter.samples, self.counter.tokens)
        values = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "loss": logs["loss"],
                  "learning_rate": logs.get("learning_rate"),
                  "samples_per_second": round((self.counter.samples - samples) / elapsed, 3),
                  "tokens_per_second": round((self.counter.tokens - tokens) / elapsed, 1)}
        emit("log", self.stream, **values)
        if self.gauges:
            self.gauges.set(values)

    def on_save(self, args, state, control, **kwargs):
        emit("checkpoint", self.stream, step=state.global_step,
             path=f"{args.output_dir}/checkpoint-{state.global_step}")


class ProgressBarCallback(TrainerCallback):
    """A rich progress bar on stderr (the Trainer's own tqdm bar would print logs to stdout)."""

    def __init__(self):
        self.progress = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self.progress = Progress(TextColumn("[bold]training[/]"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                                 console=console, disable=not console.is_terminal)
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step, loss="-")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(self.task, loss=f"{logs['loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
