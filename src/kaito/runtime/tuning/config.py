"""KAITO's `training_config.yaml` as typed, strict models, plus the shipped templates and overrides.

KAITO parses each section of the ConfigMap with `HfArgumentParser`, so a misspelt key silently
does nothing. Here every section is a pydantic model: an unknown section or key is an error that
names it. `LoraConfig` and `TrainingArguments` accept any field of `peft.LoraConfig` /
`transformers.TrainingArguments` (checked against those classes, imported only when such a key
appears), because KAITO passes them through as-is.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kaito.runtime.tuning.errors import ConfigError

METHODS = ("lora", "qlora")
Dtype = Literal["auto", "bfloat16", "float16", "float32"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelSection(_Strict):
    pretrained_model_name_or_path: str = "/workspace/tfs/weights"
    revision: str = "main"
    torch_dtype: Dtype = "bfloat16"
    device_map: str | None = "auto"
    local_files_only: bool = False
    trust_remote_code: bool = False
    cache_dir: str | None = None
    force_download: bool = False
    # Accepted because KAITO's ModelConfig lists them; transformers ignores most of them today.
    state_dict: dict[str, Any] | None = None
    from_tf: bool = False
    resume_download: bool | None = None
    proxies: dict[str, str] | None = None
    output_loading_info: bool = False
    load_in_4bit: bool = False
    load_in_8bit: bool = False


class QuantizationSection(_Strict):
    quant_method: Literal["bitsandbytes"] = "bitsandbytes"
    load_in_8bit: bool = False
    load_in_4bit: bool = False
    llm_int8_threshold: float = 6.0
    llm_int8_skip_modules: list[str] | None = None
    llm_int8_enable_fp32_cpu_offload: bool = False
    llm_int8_has_fp16_weight: bool = False
    bnb_4bit_compute_dtype: Dtype = "float32"
    bnb_4bit_quant_type: Literal["fp4", "nf4"] = "fp4"
    bnb_4bit_use_double_quant: bool = False
    bnb_4bit_quant_storage: str | None = None

    @property
    def enabled(self) -> bool:
        return self.load_in_4bit or self.load_in_8bit

    @model_validator(mode="after")
    def _one_width(self) -> QuantizationSection:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit cannot both be true")
        return self


def _check_dataclass_keys(extra: dict[str, Any] | None, section: str, module: str, cls: str) -> None:
    """Reject keys that the library class behind a pass-through section does not have."""
    if not extra:
        return
    import importlib

    known = {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), cls))}
    unknown = sorted(set(extra) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} in section {section} (not fields of {module}.{cls})")


class LoraSection(BaseModel):
    model_config = ConfigDict(extra="allow")

    r: int = Field(8, gt=0)
    lora_alpha: float = 8
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | str | None = None
    bias: Literal["none", "all", "lora_only"] = "none"
    init_lora_weights: bool | str = True
    layers_to_transform: list[int] | int | None = None
    layers_pattern: list[str] | str | None = None
    loftq_config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_extras(self) -> LoraSection:
        _check_dataclass_keys(self.model_extra, "LoraConfig", "peft", "LoraConfig")
        return self


class TrainingArgumentsSection(BaseModel):
    model_config = ConfigDict(extra="allow")

    output_dir: str = "/mnt/results"
    per_device_train_batch_size: int = Field(1, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    num_train_epochs: float = Field(3.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(5e-5, gt=0)
    save_strategy: Literal["no", "steps", "epoch", "best"] = "epoch"
    save_steps: float = 500
    save_total_limit: int | None = None
    logging_steps: float = 10
    seed: int = 42
    ddp_find_unused_parameters: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_no_is_a_word(cls, data: Any) -> Any:
        # YAML 1.1 reads an unquoted `no` as false; for *_strategy keys it means the word "no".
        if isinstance(data, dict):
            return {k: ("no" if k.endswith("_strategy") and v is False else v) for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _known_extras(self) -> TrainingArgumentsSection:
        _check_dataclass_keys(self.model_extra, "TrainingArguments", "transformers", "TrainingArguments")
        return self


class DataCollatorSection(_Strict):
    # KAITO's default is mlm=true, which its trainer turns off for tokenizers without a mask
    # token (every causal LM); a causal-LM trainer never masks, so the key is accepted and ignored.
    mlm: bool = True
    mlm_probability: float = 0.15
    pad_to_multiple_of: int | None = None


class DatasetSection(_Strict):
    dataset_path: str | None = None
    dataset_extension: str | None = None
    shuffle_dataset: bool = True
    shuffle_seed: int = 42
    context_column: str | None = None  # column holding the prompt (default "prompt")
    response_column: str = "text"  # column holding plain text rows
    messages_column: str | None = None  # column holding conversations (default "messages")
    train_test_split: float = 0.8
    # Ours, not KAITO's: longer rows are truncated; URL downloads above the limit are refused.
    max_seq_length: int = Field(1024, gt=8)
    max_download_bytes: int = Field(10 * 2**30, gt=0)

    @field_validator("train_test_split")
    @classmethod
    def _split_range(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError("train_test_split must be in (0, 1]")
        return value


class TrainingConfig(_Strict):
    ModelConfig: ModelSection = Field(default_factory=ModelSection)
    QuantizationConfig: QuantizationSection = Field(default_factory=QuantizationSection)
    LoraConfig: LoraSection = Field(default_factory=LoraSection)
    TrainingArguments: TrainingArgumentsSection = Field(default_factory=TrainingArgumentsSection)
    DataCollator: DataCollatorSection = Field(default_factory=DataCollatorSection)
    DatasetConfig: DatasetSection = Field(default_factory=DatasetSection)


class ConfigFile(_Strict):
    training_config: TrainingConfig


def read_template(method: str) -> dict[str, Any]:
    """The shipped default config of a method (KAITO's lora/qlora params templates)."""
    if method not in METHODS:
        raise ConfigError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    text = resources.files("kaito.runtime.tuning").joinpath("templates", f"{method}.yaml").read_text()
    return yaml.safe_load(text)


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping with a 'training_config' key")
    return data


def build_overridden(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply `Section.key` → value overrides (command-line flags) onto a raw config mapping."""
    out = {k: v for k, v in raw.items()}
    sections = dict(out.get("training_config") or {})
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if not key:
            raise ConfigError(f"override {dotted!r} must look like Section.key=value")
        sections[section] = {**(sections.get(section) or {}), key: value}
    out["training_config"] = sections
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """`Section.key=value` with the value read as YAML (so numbers and booleans keep their type)."""
    dotted, sep, value = text.partition("=")
    if not sep or "." not in dotted:
        raise ConfigError(f"--set {text!r} must look like Section.key=value")
    try:
        return dotted.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        return dotted.strip(), value


def _describe(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error["loc"]]
    if error["type"] == "extra_forbidden":
        if len(loc) == 2 and loc[0] == "training_config":
            known = ", ".join(TrainingConfig.model_fields)
            return f"unknown section {loc[1]!r} in training_config (known sections: {known})"
        if len(loc) == 1:
            return f"unknown top-level key {loc[0]!r} (the file must hold only 'training_config')"
        return f"unknown key {loc[-1]!r} in section {'.'.join(loc[1:-1])}"
    where = ".".join(loc) or "training_config"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


def build_training_config(raw: dict[str, Any]) -> TrainingConfig:
    """Validate a raw mapping into a TrainingConfig; every problem is named in one ConfigError."""
    try:
        return ConfigFile.model_validate(raw).training_config
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"invalid training config: {problems}") from None


def load_training_config(path: Path | None, method: str, overrides: dict[str, Any]) -> TrainingConfig:
    """The config the trainer runs with: the file (or the method's template) plus the overrides.

    `--method qlora` with a file whose QuantizationConfig quantizes nothing takes the qlora
    template's quantization, so the method flag always means what it says.
    """
    raw = read_config_file(path) if path is not None else read_template(method)
    config = build_training_config(build_overridden(raw, overrides))
    if method == "qlora" and not config.QuantizationConfig.enabled:
        quant = read_template("qlora")["training_config"]["QuantizationConfig"]
        config = config.model_copy(update={"QuantizationConfig": QuantizationSection(**quant)})
    return config
