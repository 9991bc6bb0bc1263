"""Rule 15: the tuning ConfigMap's `training_config.yaml` (reference §2.1, §7.2).

A pure function of the ConfigMap's data: whoever admits the Workspace (webhook, CLI) fetches the
ConfigMap and passes its `data` (None when it does not exist), so this room does no I/O.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

import yaml

from kaito.api.errors import FieldError

CONFIG_KEY = "training_config.yaml"
DEFAULT_CONFIGMAPS = {"lora": "lora-params-template", "qlora": "qlora-params-template"}
SECTIONS = (
    "ModelConfig",
    "QuantizationConfig",
    "LoraConfig",
    "TrainingArguments",
    "DatasetConfig",
    "DataCollator",
)
PATH = "tuning.config"


def default_configmap_name(method: str | None) -> str | None:
    """The Helm-installed template used when `tuning.config` is empty."""
    return DEFAULT_CONFIGMAPS.get((method or "").lower())


def _check_quantization(section: Any, name: str, method: str) -> list[FieldError]:
    errs: list[FieldError] = []
    quant = section if isinstance(section, Mapping) else {}
    if section is not None and not isinstance(section, Mapping):
        errs.append(FieldError(PATH, f"QuantizationConfig in ConfigMap {name!r} must be a map"))
    flags = {}
    for key in ("load_in_4bit", "load_in_8bit"):
        value = quant.get(key)
        if value is not None and not isinstance(value, bool):
            errs.append(
                FieldError(PATH, f"QuantizationConfig.{key} in ConfigMap {name!r} must be true or false")
            )
            value = None
        flags[key] = bool(value)
    four, eight = flags["load_in_4bit"], flags["load_in_8bit"]
    if four and eight:
        errs.append(
            FieldError(PATH, f"ConfigMap {name!r} cannot set both load_in_4bit and load_in_8bit to true")
        )
    if method == "lora" and (four or eight):
        errs.append(
            FieldError(
                PATH,
                f"method lora cannot quantize: load_in_4bit/load_in_8bit in ConfigMap {name!r} must not be true",
            )
        )
    if method == "qlora" and not (four or eight):
        errs.append(
            FieldError(
                PATH, f"method qlora needs load_in_4bit or load_in_8bit set to true in ConfigMap {name!r}"
            )
        )
    return errs


def _check_output_dir(section: Any, name: str) -> list[FieldError]:
    if not isinstance(section, Mapping) or "output_dir" not in section:
        return []
    value = section["output_dir"]
    if not isinstance(value, str):
        return [FieldError(PATH, f"TrainingArguments.output_dir in ConfigMap {name!r} must be a string")]
    # Like Go's filepath.Join: the value is always placed under /mnt, then cleaned.
    cleaned = posixpath.normpath("/mnt/" + value)
    if not cleaned.startswith("/mnt/"):
        return [
            FieldError(
                PATH, f"invalid output_dir {value!r} in ConfigMap {name!r}: must be a directory under /mnt"
            )
        ]
    return []


def validate_tuning_config(
    name: str, data: Mapping[str, str] | None, method: str | None, namespace: str
) -> list[FieldError]:
    """Problems with tuning ConfigMap `name` (its `data`, None if missing) for `method`."""
    if data is None:
        return [
            FieldError(PATH, f"ConfigMap {name!r} specified in 'config' not found in namespace {namespace!r}")
        ]
    raw = data.get(CONFIG_KEY)
    if raw is None:
        return [FieldError(PATH, f"ConfigMap {name!r} has no key {CONFIG_KEY!r}")]
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        return [FieldError(PATH, f"{CONFIG_KEY} in ConfigMap {name!r} is not valid YAML: {exc}")]
    config = doc.get("training_config") if isinstance(doc, Mapping) else None
    if not isinstance(config, Mapping):
        return [FieldError(PATH, f"expected 'training_config' in ConfigMap {name!r} to contain a map")]
    errs = [
        FieldError(PATH, f"unrecognized section {key!r} in ConfigMap {name!r} (known: {', '.join(SECTIONS)})")
        for key in config
        if key not in SECTIONS
    ]
    errs += _check_quantization(config.get("QuantizationConfig"), name, (method or "").lower())
    errs += _check_output_dir(config.get("TrainingArguments"), name)
    return errs
