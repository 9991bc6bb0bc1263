"""The tuning ConfigMap a Workspace's Job mounts at `/mnt/config` (key `training_config.yaml`).

When `tuning.config` names the user's ConfigMap, the Job mounts that one. Otherwise KAITO copied
its `lora-params-template`/`qlora-params-template` from the release namespace into the Workspace's
namespace, unowned and never deleted (§10 note 16). We instead create `<ws>-tuning-config`, owned
by the Workspace so it goes away with it, holding KAITO's template for the method (§7.2) verbatim,
so the trainer sees exactly the defaults a KAITO user would get.
"""

from __future__ import annotations

from typing import Any

from kaito.api.hub import Workspace
from kaito.manifests import ownership

CONFIG_KEY = "training_config.yaml"
CONFIG_DIR = "/mnt/config"
DEFAULT_OUTPUT_DIR = "/mnt/results"

_TEMPLATE = """\
training_config:
  ModelConfig:
    torch_dtype: "bfloat16"
    local_files_only: true
    device_map: "auto"

  QuantizationConfig:
{quantization}
  LoraConfig:
    r: 8
    lora_alpha: 8
    lora_dropout: 0.0

  TrainingArguments:
    output_dir: "{output_dir}"
    ddp_find_unused_parameters: false
    save_strategy: "epoch"
    per_device_train_batch_size: 1

  DataCollator:
    mlm: true

  DatasetConfig:
    shuffle_dataset: true
    train_test_split: 1
"""
_QUANTIZATION = {
    "lora": "    load_in_4bit: false\n",
    "qlora": (
        "    load_in_4bit: true\n"
        '    bnb_4bit_quant_type: "nf4"\n'
        '    bnb_4bit_compute_dtype: "bfloat16"\n'
        "    bnb_4bit_use_double_quant: true\n"
    ),
}


def tuning_method(ws: Workspace) -> str:
    """`lora` or `qlora` (KAITO's webhook accepts any case); lora when unset."""
    method = (ws.tuning.method if ws.tuning else None) or "lora"
    return method.lower()


def default_config_map_name(ws: Workspace) -> str:
    return f"{ws.name}-tuning-config"


def config_map_name(ws: Workspace) -> str:
    """The ConfigMap the Job mounts: the user's `tuning.config`, else ours."""
    return (ws.tuning.config if ws.tuning else None) or default_config_map_name(ws)


def build_default_training_config(method: str, output_dir: str = DEFAULT_OUTPUT_DIR) -> str:
    return _TEMPLATE.format(quantization=_QUANTIZATION.get(method, _QUANTIZATION["lora"]), output_dir=output_dir)


def build_tuning_config_map(ws: Workspace) -> dict[str, Any] | None:
    """Our default ConfigMap, or None when the user supplies `tuning.config`."""
    if ws.tuning is None or ws.tuning.config:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": ownership.build_metadata(ws, default_config_map_name(ws)),
        "data": {CONFIG_KEY: build_default_training_config(tuning_method(ws))},
    }
