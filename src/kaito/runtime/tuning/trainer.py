"""One tuning run: config → validated data → (Q)LoRA model → Trainer → published adapter.

The order matters: everything a user can get wrong (config, hardware, data rows) is checked
before the model is loaded or the output directory is touched, so those mistakes fail fast and
leave nothing behind. Training itself is transformers' `Trainer` with PEFT; a restart with the
same output directory resumes from the newest complete checkpoint.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from kaito.runtime import libraries
from kaito.runtime.tuning import config as configs
from kaito.runtime.tuning import data as datas
from kaito.runtime.tuning import output as outputs
from kaito.runtime.tuning.errors import ConfigError, HardwareError
from kaito.runtime.tuning.settings import TuneSettings


def compute_output_dir(settings: TuneSettings, config: configs.TrainingConfig) -> Path:
    if settings.output is not None:
        return settings.output
    # KAITO: an empty output_dir means /mnt/output, a relative one lives under /mnt.
    path = Path(config.TrainingArguments.output_dir or "/mnt/output")
    return path if path.is_absolute() else Path("/mnt") / path


def check_hardware(config: configs.TrainingConfig) -> None:
    """QLoRA is a CUDA feature (bitsandbytes' 4/8-bit kernels); say so before loading anything."""
    if not config.QuantizationConfig.enabled:
        return
    import torch

    if not torch.cuda.is_available():
        width = "4-bit" if config.QuantizationConfig.load_in_4bit else "8-bit"
        raise HardwareError(f"QLoRA ({width} QuantizationConfig) needs a CUDA GPU and none is available; "
                            "use --method lora, or set load_in_4bit/load_in_8bit to false")


def build_lora_kwargs(config: configs.TrainingConfig, environ: dict[str, str]) -> dict[str, Any]:
    lora = config.LoraConfig.model_dump()
    if lora.get("target_modules") is None and environ.get("DEFAULT_TARGET_MODULES"):
        lora["target_modules"] = [m.strip() for m in environ["DEFAULT_TARGET_MODULES"].split(",") if m.strip()]
    if not lora.get("loftq_config"):
        lora.pop("loftq_config", None)
    return {"task_type": "CAUSAL_LM", **lora}


def build_training_kwargs(config: configs.TrainingConfig, checkpoints: Path, use_cpu: bool) -> dict[str, Any]:
    kwargs = config.TrainingArguments.model_dump()
    kwargs.update(output_dir=str(checkpoints), disable_tqdm=True, use_cpu=use_cpu)
    kwargs.setdefault("report_to", "none")
    kwargs.setdefault("include_num_input_tokens_seen", "non_padding")  # feeds tokens_per_second
    if kwargs.get("ddp_find_unused_parameters") is None:
        kwargs.pop("ddp_find_unused_parameters")
    return kwargs


def load_tokenizer(model_cfg: configs.ModelSection):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model_cfg.pretrained_model_name_or_path, revision=model_cfg.revision, cache_dir=model_cfg.cache_dir,
            local_files_only=model_cfg.local_files_only, trust_remote_code=model_cfg.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the tokenizer of model {model_cfg.pretrained_model_name_or_path!r} "
                          f"(ModelConfig.pretrained_model_name_or_path / --model): {exc}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_bnb_kwargs(quant: configs.QuantizationSection) -> dict[str, Any]:
    """BitsAndBytesConfig keyword arguments; the compute dtype name becomes a torch dtype."""
    import torch

    fields = quant.model_dump(exclude={"quant_method"}, exclude_none=True)
    fields["bnb_4bit_compute_dtype"] = getattr(torch, quant.bnb_4bit_compute_dtype, torch.float32)
    return fields


def load_model(config: configs.TrainingConfig, gradient_checkpointing: bool):
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    model_cfg, quant = config.ModelConfig, config.QuantizationConfig
    kwargs: dict[str, Any] = dict(revision=model_cfg.revision, cache_dir=model_cfg.cache_dir,
                                  local_files_only=model_cfg.local_files_only,
                                  trust_remote_code=model_cfg.trust_remote_code)
    kwargs["dtype"] = "auto" if model_cfg.torch_dtype == "auto" else getattr(torch, model_cfg.torch_dtype)
    if torch.cuda.is_available():
        local_rank = os.environ.get("LOCAL_RANK")
        # Under `accelerate launch` each process holds a whole copy on its own GPU, as in KAITO.
        kwargs["device_map"] = {"": int(local_rank)} if local_rank is not None else model_cfg.device_map
    if quant.enabled:
        kwargs["quantization_config"] = BitsAndBytesConfig(**build_bnb_kwargs(quant))
    try:
        model = AutoModelForCausalLM.from_pretrained(model_cfg.pretrained_model_name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load model {model_cfg.pretrained_model_name_or_path!r}: {exc}") from None
    if quant.enabled:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    model.config.use_cache = False  # the KV cache only costs memory while training
    return model


def compute_revision(model_cfg: configs.ModelSection) -> str | None:
    """The commit the base model was loaded from (a hub snapshot hash), or None for a local folder."""
    if Path(model_cfg.pretrained_model_name_or_path).is_dir():
        return None
    from transformers.utils import cached_file

    try:
        path = cached_file(model_cfg.pretrained_model_name_or_path, "config.json", revision=model_cfg.revision,
                           cache_dir=model_cfg.cache_dir, local_files_only=True)
    except OSError:
        return model_cfg.revision
    parent = Path(path).parent if path else None
    return parent.name if parent is not None and parent.parent.name == "snapshots" else model_cfg.revision


def _resumed_step(checkpoint: Path | None) -> int:
    if checkpoint is None:
        return 0
    import json

    return int(json.loads((checkpoint / "trainer_state.json").read_text()).get("global_step", 0))


# TrainingArguments that change where and how a run reports or saves, never the adapter it makes.
_BOOKKEEPING_ARGS = frozenset({
    "output_dir", "overwrite_output_dir", "logging_dir", "logging_steps", "logging_strategy", "logging_first_step",
    "log_level", "log_level_replica", "save_strategy", "save_steps", "save_total_limit", "save_only_model",
    "report_to", "disable_tqdm", "run_name", "include_num_input_tokens_seen", "ddp_find_unused_parameters",
    "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers",
    "dataloader_prefetch_factor", "eval_strategy", "eval_steps", "per_device_eval_batch_size", "push_to_hub",
    "hub_model_id", "hub_strategy", "hub_private_repo"})


def build_fingerprint(config: configs.TrainingConfig, dataset_digest: str, environ: dict[str, str]) -> dict[str, Any]:
    """Everything that shapes the adapter: model, data, method and the resolved config sections.

    A finished output is reused only when this matches; checkpoints resume only when it matches
    up to the length of training (`output.RESUMABLE_CHANGES`).
    """
    quant = config.QuantizationConfig
    data = config.DatasetConfig.model_dump(include={"shuffle_dataset", "shuffle_seed", "context_column",
                                                    "response_column", "messages_column", "train_test_split",
                                                    "max_seq_length"})
    return {"base_model": config.ModelConfig.pretrained_model_name_or_path,
            "revision": config.ModelConfig.revision, "dataset_digest": dataset_digest,
            "method": "qlora" if quant.enabled else "lora",
            "model": {"torch_dtype": config.ModelConfig.torch_dtype},
            "quantization": quant.model_dump() if quant.enabled else None,
            "lora": build_lora_kwargs(config, environ),
            "training": {k: v for k, v in config.TrainingArguments.model_dump().items() if k not in _BOOKKEEPING_ARGS},
            "data": {**data, "pad_to_multiple_of": config.DataCollator.pad_to_multiple_of}}


def run(settings: TuneSettings) -> dict[str, Any]:
    """Train and publish; returns the completion metadata. Raises TuningError subclasses."""
    config = configs.load_training_config(settings.config, settings.method, settings.overrides)
    check_hardware(config)
    libraries.quiet_run(quantized=config.QuantizationConfig.enabled)  # plain LoRA: no bitsandbytes
    output = compute_output_dir(settings, config)
    tokenizer = load_tokenizer(config.ModelConfig)
    with tempfile.TemporaryDirectory(prefix="kaito-tune-data-") as downloads:
        files = datas.resolve_files(settings.data, config.DatasetConfig, Path(downloads))
        loaded = datas.load_examples(files, config.DatasetConfig, tokenizer)
    train_ds, eval_ds = datas.build_datasets(loaded.examples, config.DatasetConfig, tokenizer)

    from kaito.runtime.tuning import metrics

    fingerprint = build_fingerprint(config, loaded.digest, dict(os.environ))
    done = outputs.read_marker(output)
    if done is not None:
        outputs.ensure_finished_matches(output, done, fingerprint)
        metrics.emit("done", already_complete=True, output=str(output), steps=done.get("steps"))
        return done
    outputs.ensure_same_run(output, fingerprint)
    outputs.remove_stale_staging(output)
    resume = outputs.find_resume_checkpoint(output, loads=outputs.check_loadable, warn=_warn)
    return _train(config, settings, output, fingerprint, loaded, train_ds, eval_ds, tokenizer, resume)


def _warn(message: str) -> None:
    from kaito.runtime.tuning import metrics

    metrics.emit("warning", message=message)
    print(f"warning: {message}", file=sys.stderr)


def _train(config, settings, output, fingerprint, loaded, train_ds, eval_ds, tokenizer, resume) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainingArguments

    from kaito.runtime.tuning import callbacks, metrics

    # peft checks the hub for a vocabulary change on every save; offline it warns each checkpoint.
    warnings.filterwarnings("ignore", message="Could not find a config file", category=UserWarning)
    use_cpu = not torch.cuda.is_available()
    args = TrainingArguments(**build_training_kwargs(config, outputs.checkpoints_dir(output), use_cpu))
    model = load_model(config, args.gradient_checkpointing)
    try:
        model = get_peft_model(model, LoraConfig(**build_lora_kwargs(config, dict(os.environ))))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"LoraConfig does not fit model "
                          f"{config.ModelConfig.pretrained_model_name_or_path!r}: {exc}") from None
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100,
                                      pad_to_multiple_of=config.DataCollator.pad_to_multiple_of)
    gauges = metrics.Gauges(settings.metrics_port) if settings.metrics_port is not None else None
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                      data_collator=collator, processing_class=tokenizer,
                      callbacks=[callbacks.MetricsCallback(gauges), callbacks.ProgressBarCallback()])
    trainer.remove_callback(PrinterCallback)  # it prints raw dicts to stdout, which is for JSON lines
    metrics.emit("start", base_model=fingerprint["base_model"], method=fingerprint["method"],
                 rows=len(train_ds), eval_rows=len(eval_ds) if eval_ds is not None else 0,
                 resumed_from_step=_resumed_step(resume), output=str(output),
                 metrics_port=gauges.port if gauges else None)
    try:
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    finally:
        if gauges:
            gauges.close()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    metadata = {"base_model": fingerprint["base_model"], "dataset_digest": fingerprint["dataset_digest"],
                "method": fingerprint["method"], "revision": compute_revision(config.ModelConfig),
                "requested_revision": fingerprint["revision"],
                "dataset_files": [p.name for p in loaded.files], "rows": len(loaded.examples),
                "steps": trainer.state.global_step, "final_loss": losses[-1] if losses else result.training_loss,
                "train_loss": result.training_loss, "lora_r": config.LoraConfig.r,
                "train_runtime_s": result.metrics.get("train_runtime"),
                "train_samples_per_second": result.metrics.get("train_samples_per_second"),
                "settings": fingerprint}

    def write(staging: Path) -> None:
        trainer.model.save_pretrained(staging, save_embedding_layers=False)
        tokenizer.save_pretrained(staging)

    if not trainer.is_world_process_zero():
        return metadata  # one writer: rank 0 publishes the adapter
    marker = outputs.publish_adapter(output, write, metadata)
    metrics.emit("done", output=str(output), steps=metadata["steps"], final_loss=metadata["final_loss"])
    print(f"adapter written to {output} after {metadata['steps']} steps", file=sys.stderr)
    return marker
