"""The trainer's one settings object and the command line that fills it.

`python -m kaito.runtime.tuning` and `kaito tune` share this parser. KAITO's environment
variables keep working: `YAML_FILE_PATH` names the config file when `--config` is absent,
`DATASET_FOLDER_PATH` the data folder, `DEFAULT_TARGET_MODULES` the LoRA target modules.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from kaito.runtime.tuning import config as configs


class TuneSettings(BaseModel):
    model_config = ConfigDict(frozen=True, protected_namespaces=())

    config: Path | None = None
    method: Literal["lora", "qlora"] = "lora"
    model: str | None = None
    revision: str | None = None
    data: list[str] = []
    output: Path | None = None
    overrides: dict[str, Any] = {}
    metrics_port: int | None = None


# Convenience flags → the training_config key they override.
_SHORTCUTS = {
    "max_steps": ("TrainingArguments.max_steps", int),
    "epochs": ("TrainingArguments.num_train_epochs", float),
    "learning_rate": ("TrainingArguments.learning_rate", float),
    "batch_size": ("TrainingArguments.per_device_train_batch_size", int),
    "gradient_accumulation_steps": ("TrainingArguments.gradient_accumulation_steps", int),
    "logging_steps": ("TrainingArguments.logging_steps", int),
    "seed": ("TrainingArguments.seed", int),
    "lora_r": ("LoraConfig.r", int),
    "max_seq_length": ("DatasetConfig.max_seq_length", int),
}


def build_parser(prog: str = "python -m kaito.runtime.tuning") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Fine-tune a causal LM with LoRA or QLoRA into an adapter KAITO's server loads.")
    parser.add_argument("--config", type=Path, help="KAITO training_config.yaml (default: $YAML_FILE_PATH, "
                        "else the --method template)")
    parser.add_argument("--method", choices=configs.METHODS, default="lora", help="lora or qlora (CUDA only)")
    parser.add_argument("--model", help="hub id or local directory (overrides ModelConfig."
                        "pretrained_model_name_or_path)")
    parser.add_argument("--revision", help="model revision (overrides ModelConfig.revision)")
    parser.add_argument("--data", action="append", default=[], metavar="PATH_OR_URL",
                        help="data file, folder or http(s) URL; repeatable (default: $DATASET_FOLDER_PATH)")
    parser.add_argument("--output", type=Path, help="output directory (overrides TrainingArguments.output_dir)")
    for flag, (key, kind) in _SHORTCUTS.items():
        parser.add_argument("--" + flag.replace("_", "-"), dest=flag, type=kind, help=f"sets {key}")
    parser.add_argument("--save-steps", type=int, help="checkpoint every N steps (sets save_strategy=steps)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config key, e.g. --set LoraConfig.lora_alpha=16; repeatable")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    return parser


def compute_settings(argv: list[str], environ: dict[str, str] | None = None, prog: str | None = None) -> TuneSettings:
    env = os.environ if environ is None else environ
    args = (build_parser(prog) if prog else build_parser()).parse_args(argv)
    overrides: dict[str, Any] = {}
    for flag, (key, _) in _SHORTCUTS.items():
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    if args.save_steps is not None:
        overrides["TrainingArguments.save_strategy"] = "steps"
        overrides["TrainingArguments.save_steps"] = args.save_steps
    if args.model:
        overrides["ModelConfig.pretrained_model_name_or_path"] = args.model
    if args.revision:
        overrides["ModelConfig.revision"] = args.revision
    for text in args.sets:
        key, value = configs.parse_override(text)
        overrides[key] = value
    config = args.config
    if config is None and env.get("YAML_FILE_PATH") and Path(env["YAML_FILE_PATH"]).is_file():
        config = Path(env["YAML_FILE_PATH"])
    return TuneSettings(config=config, method=args.method, model=args.model, revision=args.revision,
                        data=args.data, output=args.output, overrides=overrides, metrics_port=args.metrics_port)
