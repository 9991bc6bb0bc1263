"""Trainer callbacks: a progress bar on stderr for people, metric events for machines.

The Trainer's own tqdm bar and its PrinterCallback write log dicts to stdout, which is reserved
for JSON lines (`metrics.emit`), so the trainer replaces them with these.
"""

from __future__ import annotations

import time
from typing import TextIO

from transformers import TrainerCallback

from kaito.runtime.tuning.metrics import Gauges, emit


class MetricsCallback(TrainerCallback):
    """Turns the Trainer's log calls into JSON-lines events and gauge values.

    Rates come from the Trainer's own counters (optimizer steps, `num_input_tokens_seen` of the
    batches actually consumed), so data-loader prefetching cannot skew them.
    """

    def __init__(self, gauges: Gauges | None = None, stream: TextIO | None = None):
        self.gauges, self.stream = gauges, stream
        self._mark = (time.perf_counter(), 0, 0)

    def on_train_begin(self, args, state, control, **kwargs):
        self._mark = (time.perf_counter(), state.global_step, state.num_input_tokens_seen)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        # Under `accelerate launch` every rank runs callbacks; only the first one reports.
        if "loss" not in logs or not state.is_world_process_zero:
            return
        now = time.perf_counter()
        then, step, tokens = self._mark
        elapsed = max(now - then, 1e-9)
        self._mark = (now, state.global_step, state.num_input_tokens_seen)
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        values = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "loss": logs["loss"],
                  "learning_rate": logs.get("learning_rate"),
                  "samples_per_second": round((state.global_step - step) * per_step / elapsed, 3),
                  "tokens_per_second": round((state.num_input_tokens_seen - tokens) / elapsed, 1)}
        emit("log", self.stream, **values)
        if self.gauges:
            self.gauges.set(values)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        emit("checkpoint", self.stream, step=state.global_step,
             path=f"{args.output_dir}/checkpoint-{state.global_step}")


class ProgressBarCallback(TrainerCallback):
    """A rich progress bar on stderr, shown when stderr is a terminal."""

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
