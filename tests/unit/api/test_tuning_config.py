"""Rule 15: the tuning ConfigMap's `training_config.yaml`, as a pure function of its data."""

from __future__ import annotations

import pytest

from kaito.api.validation import default_configmap_name, validate_tuning_config


def cm(body: str) -> dict[str, str]:
    return {"training_config.yaml": body}


QLORA = cm(
    "training_config:\n  QuantizationConfig: {load_in_4bit: true}\n  TrainingArguments: {output_dir: /mnt/results}\n"
)
LORA = cm("training_config:\n  LoraConfig: {r: 8}\n  TrainingArguments: {output_dir: results}\n")

CASES = [
    ("lora-ok", LORA, "lora", None),
    ("qlora-ok", QLORA, "qlora", None),
    ("qlora-8bit-ok", cm("training_config:\n  QuantizationConfig: {load_in_8bit: true}\n"), "qlora", None),
    (
        "lora-quant-false-ok",
        cm("training_config:\n  QuantizationConfig: {load_in_4bit: false}\n"),
        "lora",
        None,
    ),
    ("missing", None, "lora", "not found in namespace 'team'"),
    ("no-key", {"other.yaml": "x"}, "lora", "no key 'training_config.yaml'"),
    ("bad-yaml", cm("training_config: [unclosed"), "lora", "not valid YAML"),
    ("not-map", cm("training_config: [1, 2]"), "lora", "contain a map"),
    ("no-top-key", cm("something: {}"), "lora", "contain a map"),
    (
        "unknown-section",
        cm("training_config:\n  Optimizer: {}\n"),
        "lora",
        "unrecognized section 'Optimizer'",
    ),
    (
        "4bit-not-bool",
        cm("training_config:\n  QuantizationConfig: {load_in_4bit: 'yes'}\n"),
        "qlora",
        "must be true or false",
    ),
    (
        "both-bits",
        cm("training_config:\n  QuantizationConfig: {load_in_4bit: true, load_in_8bit: true}\n"),
        "qlora",
        "cannot set both",
    ),
    ("lora-with-4bit", QLORA, "lora", "method lora cannot quantize"),
    ("qlora-without-bits", LORA, "qlora", "needs load_in_4bit or load_in_8bit"),
    (
        "output-dir-number",
        cm("training_config:\n  TrainingArguments: {output_dir: 5}\n"),
        "lora",
        "must be a string",
    ),
    (
        "output-dir-root",
        cm("training_config:\n  TrainingArguments: {output_dir: '.'}\n"),
        "lora",
        "must be a directory under /mnt",
    ),
    (
        "output-dir-escape",
        cm("training_config:\n  TrainingArguments: {output_dir: '../etc'}\n"),
        "lora",
        "must be a directory under /mnt",
    ),
]


@pytest.mark.parametrize(("name", "data", "method", "phrase"), CASES, ids=[c[0] for c in CASES])
def test_tuning_configmap(name, data, method, phrase) -> None:
    errors = validate_tuning_config("my-config", data, method, "team")
    if phrase is None:
        assert errors == []
    else:
        assert errors, "expected a problem"
        assert all(e.path == "tuning.config" for e in errors)
        assert any(phrase in e.message for e in errors), errors


def test_default_template_names() -> None:
    assert default_configmap_name("LoRA") == "lora-params-template"
    assert default_configmap_name("qlora") == "qlora-params-template"
    assert default_configmap_name("sft") is None
