"""Load the tokenizer, the model and its adapters as the settings say, with clear errors.

This is the one place that turns `ServerSettings` into `from_pretrained` arguments, so the
transformers engine and the KAITO-style benchmark server load a model the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kaito.runtime import libraries
from kaito.runtime.inference import adapters as adapters_mod
from kaito.runtime.inference.settings import ServerSettings, compute_adapter_strength


class LoadError(RuntimeError):
    """The model cannot be loaded as configured; the message names the setting or the file."""


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    model: object
    tokenizer: object
    device: object
    adapters: tuple[str, ...]
    max_model_len: int


def compute_device(settings: ServerSettings) -> str:
    import torch

    if settings.device == "cuda" and not torch.cuda.is_available():
        raise LoadError("--device cuda: no CUDA device is available")
    if settings.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return settings.device


def build_quantization(settings: ServerSettings):
    if not (settings.load_in_4bit or settings.load_in_8bit):
        return None
    import torch

    flag = "--load-in-4bit" if settings.load_in_4bit else "--load-in-8bit"
    if not torch.cuda.is_available():
        raise LoadError(f"{flag} needs a CUDA device; none is available")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise LoadError(f"{flag} needs bitsandbytes: pip install 'kaito[qlora]'") from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=settings.load_in_4bit, load_in_8bit=settings.load_in_8bit)


def build_chat_template(value: str | None) -> str | None:
    """A chat-template override: a path to a Jinja file, or the template text itself."""
    if value is None:
        return None
    candidate = Path(value)
    if len(value) < 4096 and "{" not in value:
        if not candidate.is_file():
            raise LoadError(f"--chat-template: file {value} does not exist")
        return candidate.read_text()
    return value


def compute_max_model_len(settings: ServerSettings, config) -> int:
    limit = getattr(config, "max_position_embeddings", None) or 2048
    if settings.max_model_len is not None:
        if settings.max_model_len > limit:
            raise LoadError(f"--max-model-len {settings.max_model_len} exceeds the model's "
                            f"max_position_embeddings ({limit})")
        return settings.max_model_len
    return int(limit)


def load_tokenizer(settings: ServerSettings):
    """The tokenizer as the server uses it: chat-template override applied, a pad token set.

    The engine process and the HTTP process each load it (the HTTP side tokenizes and applies chat
    templates; the engine side turns tokens back into text), from the same settings.
    """
    from transformers import AutoTokenizer

    template = build_chat_template(settings.chat_template)
    try:
        tokenizer = AutoTokenizer.from_pretrained(settings.model, revision=settings.revision,
                                                  trust_remote_code=settings.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise LoadError(f"--model {settings.model}: cannot load a tokenizer: {exc}") from exc
    if template is not None:
        tokenizer.chat_template = template
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(settings: ServerSettings, stage: Callable[[str], None] = lambda _: None) -> LoadedModel:
    """Tokenizer, model on its device, adapters applied; `stage(words)` is told each step as it starts."""
    import torch
    from transformers import AutoModelForCausalLM

    device = compute_device(settings)
    quantization = build_quantization(settings)
    libraries.quiet_run(quantized=quantization is not None)  # adapters' peft: no bitsandbytes unless used
    common = {"revision": settings.revision, "trust_remote_code": settings.trust_remote_code}
    stage(f"tokenizer from {settings.model}")
    tokenizer = load_tokenizer(settings)
    kwargs: dict[str, object] = {**common, **settings.model_kwargs}
    kwargs["dtype"] = "auto" if settings.dtype == "auto" else getattr(torch, settings.dtype)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs.setdefault("device_map", "auto")
    stage(f"model {settings.model} (revision {settings.revision}, dtype {settings.dtype}) onto {device}")
    try:
        model = AutoModelForCausalLM.from_pretrained(settings.model, **kwargs)
    except (OSError, ValueError, TypeError) as exc:
        raise LoadError(f"--model {settings.model}: cannot load the model: {exc}") from exc
    if quantization is None and "device_map" not in kwargs:
        model = model.to(device)
    max_len = compute_max_model_len(settings, model.config)
    specs = adapters_mod.build_adapter_specs(
        adapters_mod.discover_adapters(settings.adapters_dir),
        lambda name: compute_adapter_strength(settings, name, os.environ),
    )
    if specs:
        stage(f"{len(specs)} adapter(s) from {settings.adapters_dir}")
    model = adapters_mod.apply_adapters(model, specs, settings.combination_type)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, device=torch.device(device),
                       adapters=tuple(s.name for s in specs), max_model_len=max_len)


def build_cache_kwarg(model) -> str:
    """transformers 5.x renames `past_key_values` to `cache`; remote-code models may not follow."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def build_eos_ids(loaded) -> tuple[int, ...]:
    """Every id that ends a sequence: generation config, model config and tokenizer may differ."""
    ids: set[int] = set()
    for source in (getattr(loaded.model, "generation_config", None), getattr(loaded.model, "config", None),
                   loaded.tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    return tuple(sorted(ids))

