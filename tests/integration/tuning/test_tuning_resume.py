"""SIGKILL the trainer after a checkpoint, start it again: it resumes from that step, not from zero.

The first run is a real process (`python -m kaito.runtime.tuning`), killed like a Job's pod; the
restart reuses the same output directory, as a new pod would with the same volume. A newest
checkpoint that does not load (its weights, optimizer state or trainer state damaged on disk) is
set aside and the run resumes from the one before, and completes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kaito.runtime.tuning import output as outputs
from kaito.runtime.tuning.__main__ import main


def _command(tiny_model, data: Path, out: Path, max_steps: int) -> list[str]:
    return [sys.executable, "-m", "kaito.runtime.tuning", "--model", tiny_model.repo_id, "--data", str(data),
            "--output", str(out), "--max-steps", str(max_steps), "--save-steps", "5", "--logging-steps", "1",
            "--batch-size", "2", "--learning-rate", "1e-2", "--set", "ModelConfig.torch_dtype=float32"]


def _env(tiny_model) -> dict[str, str]:
    return {**os.environ, **tiny_model.env(), "PYTHONUNBUFFERED": "1"}


def _complete_steps(out: Path) -> list[int]:
    folder = outputs.checkpoints_dir(out)
    return sorted(int(p.name.split("-")[1]) for p in folder.glob("checkpoint-*")
                  if (p / "trainer_state.json").is_file())


def test_killed_trainer_resumes_from_its_last_checkpoint(tiny_model, tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}?", "completion": "the quick brown fox"}) + "\n"
                            for i in range(40)))
    out = tmp_path / "out"

    # First run: far more steps than it will live for; killed as soon as a checkpoint is announced.
    with (tmp_path / "first.err").open("w") as err:
        first = subprocess.Popen(_command(tiny_model, data, out, 5000), stdout=subprocess.PIPE, stderr=err,
                                 text=True, env=_env(tiny_model))
        seen = []
        for line in first.stdout:
            seen.append(json.loads(line))
            if seen[-1]["event"] == "checkpoint":
                first.send_signal(signal.SIGKILL)
                break
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.err").read_text()[-2000:]
    assert seen[0]["event"] == "start" and seen[0]["resumed_from_step"] == 0
    assert outputs.read_marker(out) is None and not (out / "adapter_model.safetensors").exists()
    steps = _complete_steps(out)
    assert steps and steps[0] == 5
    resume_at = steps[-1]

    # Second run, same output directory: picks up at the newest complete checkpoint. It runs the
    # same `main` in this process (the test session already paid for importing torch and peft).
    target = resume_at + 6
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(_command(tiny_model, data, out, target)[3:])
    assert code == 0
    events = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert events[0]["event"] == "start" and events[0]["resumed_from_step"] == resume_at
    logs = [e["step"] for e in events if e["event"] == "log"]
    assert logs == list(range(resume_at + 1, target + 1))  # no step from zero was redone
    assert events[-1] == {**events[-1], "event": "done", "steps": target}
    assert outputs.read_marker(out)["steps"] == target

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model.path), out)
    assert any("lora_B" in name for name, _ in model.named_parameters())


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.fixture(scope="module")
def two_checkpoints(tiny_model, tmp_path_factory):
    """A run that stopped with complete checkpoints at steps 5 and 10 (its adapter not published)."""
    root = tmp_path_factory.mktemp("two-checkpoints")
    data = root / "qa.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}?", "completion": "the quick brown fox"}) + "\n"
                            for i in range(40)))
    out = root / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(_command(tiny_model, data, out, 10)[3:]) == 0
    (out / outputs.MARKER).unlink()  # as if killed right after its last checkpoint
    assert _complete_steps(out) == [5, 10]
    return data, out


@pytest.mark.parametrize("damage", [
    lambda ckpt: _truncate(ckpt / "adapter_model.safetensors"),
    lambda ckpt: _truncate(ckpt / "optimizer.pt"),
    lambda ckpt: (ckpt / "trainer_state.json").write_text('{"global_step": 10, "log_hi'),
], ids=["weights", "optimizer", "trainer-state"])
def test_a_newest_checkpoint_that_does_not_load_is_set_aside_and_the_previous_used(
        tiny_model, two_checkpoints, tmp_path, damage):
    data, template = two_checkpoints
    out = tmp_path / "out"
    shutil.copytree(template, out)
    newest = outputs.checkpoints_dir(out) / "checkpoint-10"
    damage(newest)
    damaged = {p.name: p.read_bytes() for p in newest.iterdir() if p.is_file()}

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(_command(tiny_model, data, out, 14)[3:])
    assert code == 0
    events = [json.loads(line) for line in stdout.getvalue().splitlines()]
    warning = next(e for e in events if e["event"] == "warning")
    assert str(newest) in warning["message"] and "does not load" in warning["message"]
    start = next(e for e in events if e["event"] == "start")
    assert start["resumed_from_step"] == 5
    assert [e["step"] for e in events if e["event"] == "log"] == list(range(6, 15))
    assert outputs.read_marker(out)["steps"] == 14  # training completed

    set_aside = list((outputs.checkpoints_dir(out) / outputs.SET_ASIDE).iterdir())
    assert len(set_aside) == 1 and set_aside[0].name.startswith("checkpoint-10-")
    assert {p.name: p.read_bytes() for p in set_aside[0].iterdir() if p.is_file()} == damaged  # kept as it was
