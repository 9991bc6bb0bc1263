"""The output directory: resumable checkpoints, foreign checkpoints refused, marker written last."""

from __future__ import annotations

import json

import pytest

from kaito.runtime.tuning import output as outputs
from kaito.runtime.tuning.errors import OutputError


def _adapter(staging):
    (staging / "adapter_config.json").write_text("{}")
    (staging / "adapter_model.safetensors").write_bytes(b"weights")


def test_publish_moves_files_and_writes_marker_last(tmp_path):
    out = tmp_path / "out"
    outputs.publish_adapter(out, _adapter, {"steps": 3, "final_loss": 1.5})
    assert (out / "adapter_model.safetensors").read_bytes() == b"weights"
    marker = outputs.read_marker(out)
    assert marker["steps"] == 3 and marker["message"].startswith("Fine-Tuning completed at ")
    assert not list(out.glob(".adapter-staging-*"))


def test_failed_publish_leaves_nothing_complete(tmp_path):
    out = tmp_path / "out"
    outputs.publish_adapter(out, _adapter, {"steps": 1})

    def broken(staging):
        (staging / "adapter_config.json").write_text("{}")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        outputs.publish_adapter(out, broken, {"steps": 2})
    # The earlier complete adapter is untouched, nothing of the broken one is visible.
    assert outputs.read_marker(out)["steps"] == 1
    assert not list(out.glob(".adapter-staging-*"))


def test_adapter_without_config_is_refused(tmp_path):
    with pytest.raises(OutputError, match="adapter_config.json"):
        outputs.publish_adapter(tmp_path / "out", lambda staging: None, {})
    assert outputs.read_marker(tmp_path / "out") is None


def test_resume_picks_newest_complete_checkpoint(tmp_path):
    folder = outputs.checkpoints_dir(tmp_path)
    for step, complete in [(5, True), (10, True), (15, False)]:
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (folder / "checkpoint-x").mkdir()
    assert outputs.find_resume_checkpoint(tmp_path) == folder / "checkpoint-10"
    assert not (folder / "checkpoint-15").exists()  # torn by a kill mid-save
    assert outputs.find_resume_checkpoint(tmp_path / "fresh") is None


def test_when_no_checkpoint_loads_all_are_set_aside_and_training_starts_over(tmp_path):
    folder = outputs.checkpoints_dir(tmp_path)
    for step in (5, 10):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    warnings = []
    assert outputs.find_resume_checkpoint(tmp_path, loads=lambda c: "broken", warn=warnings.append) is None
    assert [w.split(" does not load")[0] for w in warnings] == [f"checkpoint {folder / 'checkpoint-10'}",
                                                                 f"checkpoint {folder / 'checkpoint-5'}"]
    assert sorted(p.name.rsplit("-", 1)[0] for p in (folder / outputs.SET_ASIDE).iterdir()) == ["checkpoint-10",
                                                                                          "checkpoint-5"]
    assert not list(folder.glob("checkpoint-*"))


def test_checkpoints_of_another_run_are_refused(tmp_path):
    first = {"dataset_digest": "a", "base_model": "m", "lora": {"r": 8}, "training": {"max_steps": 10}}
    outputs.ensure_same_run(tmp_path, first)
    (outputs.checkpoints_dir(tmp_path) / "checkpoint-5").mkdir()
    outputs.ensure_same_run(tmp_path, first)
    with pytest.raises(OutputError, match="different settings: dataset_digest a→b; use a new --output"):
        outputs.ensure_same_run(tmp_path, {**first, "dataset_digest": "b"})
    with pytest.raises(OutputError, match="lora.r 8→16"):
        outputs.ensure_same_run(tmp_path, {**first, "lora": {"r": 16}})
    run = json.loads((outputs.checkpoints_dir(tmp_path) / outputs.RUN_FILE).read_text())
    assert run == first
    # Training longer is how a killed or finished-early run is continued: it resumes.
    outputs.ensure_same_run(tmp_path, {**first, "training": {"max_steps": 20}})


def test_finished_output_with_other_settings_is_refused(tmp_path):
    settings = {"base_model": "m", "dataset_digest": "d" * 64, "lora": {"r": 8, "target_modules": None},
                "training": {"max_steps": 2, "learning_rate": 5e-5}, "quantization": None}
    marker = outputs.publish_adapter(tmp_path, _adapter, {"steps": 2, "settings": settings})
    outputs.ensure_finished_matches(tmp_path, outputs.read_marker(tmp_path), settings)
    changed = {**settings, "dataset_digest": "e" * 64, "lora": {"r": 16, "target_modules": ["q_proj"]},
               "training": {"max_steps": 4, "learning_rate": 1e-3}}
    with pytest.raises(OutputError) as err:
        outputs.ensure_finished_matches(tmp_path, marker, changed)
    assert str(err.value) == (
        f"output directory {tmp_path} already holds an adapter finished with different settings: "
        f"dataset_digest dddddddddddd…→eeeeeeeeeeee…, lora.r 8→16, lora.target_modules null→[\"q_proj\"], "
        "training.learning_rate 5e-05→0.001, training.max_steps 2→4; use a new --output or delete it")
    # A marker that recorded no settings (or others) is never taken for this run.
    with pytest.raises(OutputError, match="lora.r unset→8"):
        outputs.ensure_finished_matches(tmp_path, {"steps": 2}, settings)


def test_stale_staging_is_removed(tmp_path):
    (tmp_path / ".adapter-staging-abc").mkdir()
    outputs.remove_stale_staging(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_metrics_gauges_are_served():
    import httpx

    from kaito.runtime.tuning import metrics

    gauges = metrics.Gauges(0, addr="127.0.0.1")
    try:
        gauges.set({"step": 7, "loss": 0.25, "learning_rate": None})
        text = httpx.get(f"http://127.0.0.1:{gauges.port}/metrics").text
    finally:
        gauges.close()
    assert "kaito_tuning_step 7.0" in text and "kaito_tuning_loss 0.25" in text
