"""The training_config: KAITO's templates, strict sections, overrides and the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kaito.runtime.tuning import config as configs
from kaito.runtime.tuning import settings
from kaito.runtime.tuning.errors import ConfigError


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "training_config.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_lora_template_has_kaito_defaults():
    cfg = configs.load_training_config(None, "lora", {})
    assert cfg.ModelConfig.torch_dtype == "bfloat16" and cfg.ModelConfig.local_files_only is True
    assert cfg.ModelConfig.device_map == "auto"
    assert not cfg.QuantizationConfig.enabled
    assert (cfg.LoraConfig.r, cfg.LoraConfig.lora_alpha, cfg.LoraConfig.lora_dropout) == (8, 8, 0.0)
    assert cfg.TrainingArguments.output_dir == "/mnt/results"
    assert cfg.TrainingArguments.save_strategy == "epoch"
    assert cfg.TrainingArguments.per_device_train_batch_size == 1
    assert cfg.TrainingArguments.ddp_find_unused_parameters is False
    assert cfg.DataCollator.mlm is True
    assert cfg.DatasetConfig.shuffle_dataset is True and cfg.DatasetConfig.train_test_split == 1


def test_qlora_template_quantizes_nf4():
    quant = configs.load_training_config(None, "qlora", {}).QuantizationConfig
    assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4"
    assert quant.bnb_4bit_compute_dtype == "bfloat16" and quant.bnb_4bit_use_double_quant


def test_method_qlora_fills_quantization_into_a_file_without_it(tmp_path):
    path = _write(tmp_path, {"training_config": {"LoraConfig": {"r": 4}}})
    cfg = configs.load_training_config(path, "qlora", {})
    assert cfg.QuantizationConfig.load_in_4bit and cfg.LoraConfig.r == 4


def test_unknown_section_is_named(tmp_path):
    path = _write(tmp_path, {"training_config": {"LoraConfig": {}, "TrainingArgs": {"max_steps": 3}}})
    with pytest.raises(ConfigError, match="unknown section 'TrainingArgs'"):
        configs.load_training_config(path, "lora", {})


@pytest.mark.parametrize("section,key", [("ModelConfig", "torch_dtyp"), ("QuantizationConfig", "load_in_3bit"),
                                         ("DatasetConfig", "shuffle"), ("DataCollator", "mask")])
def test_unknown_key_in_a_strict_section_is_named(tmp_path, section, key):
    path = _write(tmp_path, {"training_config": {section: {key: 1}}})
    with pytest.raises(ConfigError, match=f"unknown key '{key}' in section {section}"):
        configs.load_training_config(path, "lora", {})


def test_unknown_training_argument_is_checked_against_transformers(tmp_path):
    pytest.importorskip("transformers")
    ok = configs.build_training_config({"training_config": {"TrainingArguments": {"warmup_steps": 3}}})
    assert ok.TrainingArguments.model_extra == {"warmup_steps": 3}
    with pytest.raises(ConfigError, match="max_step.*TrainingArguments"):
        configs.build_training_config({"training_config": {"TrainingArguments": {"max_step": 3}}})


def test_top_level_must_be_training_config(tmp_path):
    with pytest.raises(ConfigError, match="unknown top-level key 'extra'"):
        configs.load_training_config(_write(tmp_path, {"training_config": {}, "extra": 1}), "lora", {})
    with pytest.raises(ConfigError, match="training_config"):
        configs.load_training_config(_write(tmp_path, {"other": 1}), "lora", {})


@pytest.mark.parametrize("text,match", [("training_config: [", "not valid YAML"), ("- a\n- b\n", "mapping")])
def test_unreadable_files(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        configs.load_training_config(_write(tmp_path, text), "lora", {})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file .*nope.yaml"):
        configs.load_training_config(tmp_path / "nope.yaml", "lora", {})


@pytest.mark.parametrize("split", [0, 1.5, -0.1])
def test_train_test_split_must_be_in_range(split):
    with pytest.raises(ConfigError, match="DatasetConfig.train_test_split"):
        configs.build_training_config({"training_config": {"DatasetConfig": {"train_test_split": split}}})


def test_both_quantization_widths_is_an_error():
    with pytest.raises(ConfigError, match="load_in_4bit and load_in_8bit"):
        configs.build_training_config(
            {"training_config": {"QuantizationConfig": {"load_in_4bit": True, "load_in_8bit": True}}})


def test_overrides_win_over_the_file(tmp_path):
    path = _write(tmp_path, {"training_config": {"TrainingArguments": {"max_steps": 100, "learning_rate": 0.1}}})
    cfg = configs.load_training_config(path, "lora", {"TrainingArguments.max_steps": 7, "LoraConfig.r": 2})
    assert cfg.TrainingArguments.max_steps == 7 and cfg.TrainingArguments.learning_rate == 0.1
    assert cfg.LoraConfig.r == 2


def test_override_into_unknown_section_is_an_error():
    with pytest.raises(ConfigError, match="unknown section 'Nope'"):
        configs.load_training_config(None, "lora", {"Nope.x": 1})


def test_parse_override_reads_yaml_values():
    assert configs.parse_override("TrainingArguments.max_steps=30") == ("TrainingArguments.max_steps", 30)
    assert configs.parse_override("ModelConfig.local_files_only=false") == ("ModelConfig.local_files_only", False)
    assert configs.parse_override("LoraConfig.target_modules=[q_proj, v_proj]")[1] == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="Section.key=value"):
        configs.parse_override("max_steps=3")


def test_unknown_method_is_an_error():
    with pytest.raises(ConfigError, match="--method"):
        configs.read_template("dora")


def test_command_line_becomes_settings(tmp_path):
    tune = settings.compute_settings(
        ["--model", "org/m", "--data", "a.jsonl", "--data", "https://x/b.csv", "--output", str(tmp_path),
         "--max-steps", "30", "--save-steps", "5", "--learning-rate", "0.01", "--set", "LoraConfig.r=4",
         "--method", "qlora"], environ={})
    assert tune.data == ["a.jsonl", "https://x/b.csv"] and tune.method == "qlora" and tune.config is None
    assert tune.overrides == {
        "TrainingArguments.max_steps": 30, "TrainingArguments.save_strategy": "steps",
        "TrainingArguments.save_steps": 5, "TrainingArguments.learning_rate": 0.01,
        "ModelConfig.pretrained_model_name_or_path": "org/m", "LoraConfig.r": 4}


def test_kaito_yaml_file_path_env_names_the_config(tmp_path):
    path = _write(tmp_path, {"training_config": {}})
    assert settings.compute_settings([], environ={"YAML_FILE_PATH": str(path)}).config == path
    assert settings.compute_settings([], environ={"YAML_FILE_PATH": str(tmp_path / "no")}).config is None


def test_yaml_no_means_the_strategy_no(tmp_path):
    path = _write(tmp_path, "training_config:\n  TrainingArguments: {save_strategy: no}\n")
    assert configs.load_training_config(path, "lora", {}).TrainingArguments.save_strategy == "no"
    key, value = configs.parse_override("TrainingArguments.save_strategy=no")
    assert configs.load_training_config(None, "lora", {key: value}).TrainingArguments.save_strategy == "no"
