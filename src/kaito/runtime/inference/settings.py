"""One typed settings object for the model server, built from flags and environment.

Our flags (`--model`, `--dtype`, ...) and KAITO v0.3.2's (`--pretrained_model_name_or_path`,
`--torch_dtype`, `--pipeline`, ...) land in the same fields, so a KAITO Deployment's command line
starts this server unchanged. KAITO folds unknown `--flag value` arguments into the keyword
arguments of `from_pretrained`; so do we (`model_kwargs`). Every field can also come from the
environment as `KAITO_<FIELD>`; flags win. Adapter strengths follow KAITO's convention: an
environment variable named after the adapter directory holds its strength.

`--kaito-config-file` is KAITO v0.12's runtime-parameter file (a Workspace's `inference.config`
ConfigMap, mounted at /mnt/config): each entry of its `vllm:` map that names one of our flags
(`max-model-len`, `max-num-seqs`, ...) overrides the command line, as KAITO's wrapper appends them
after the operator's flags; the others are kept in `runtime_params` for the vLLM engine.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kaito.runtime.inference.engine import AUTO_ENGINE, EngineName

ENV_PREFIX = "KAITO_"
KAITO_ADAPTERS_DIR = "/mnt/adapter"
KAITO_WEIGHTS_DIR = "/workspace/tfs/weights"


class SettingsError(ValueError):
    """A setting is wrong; the message names the flag and the problem."""


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str = KAITO_WEIGHTS_DIR
    revision: str = "main"
    served_model_name: str | None = None
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    engine: Literal["auto"] | EngineName = AUTO_ENGINE
    trust_remote_code: bool = False
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    pipeline: Literal["text-generation", "conversational"] = "text-generation"
    chat_template: str | None = None  # a Jinja string or a path to a file holding one
    adapters_dir: Path | None = Path(KAITO_ADAPTERS_DIR)
    adapter_strengths: dict[str, float] = Field(default_factory=dict)
    combination_type: str = "svd"
    max_model_len: int | None = Field(default=None, gt=0)
    max_running: int = Field(default=16, gt=0)
    max_queued: int | None = Field(default=None, ge=0)  # None: KAITO's guard, as many as max_running
    max_prefill_tokens: int = Field(default=2048, gt=0)  # padded prompt tokens per prefill step
    engine_process: bool = True  # the transformers engine in its own process (False: a thread of the server)
    host: str = "0.0.0.0"
    port: int = Field(default=5000, ge=0, le=65535)
    api_key: str | None = None
    model_kwargs: dict[str, str | bool] = Field(default_factory=dict)
    config_file: Path | None = None  # KAITO's --kaito-config-file (inference_config.yaml)
    runtime_params: dict[str, str] = Field(default_factory=dict)  # its `vllm:` entries that are not our flags

    @field_validator("served_model_name", "api_key", "chat_template")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("engine", mode="before")
    @classmethod
    def _known_engine(cls, value: object) -> object:
        choices = (AUTO_ENGINE, *EngineName)
        if value not in choices:
            raise ValueError(f"unknown engine {value!r} (use {', '.join(choices)})")
        return value

    @field_validator("adapters_dir", mode="before")
    @classmethod
    def _empty_dir_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value  # `--adapters-dir ""` turns adapters off

    @property
    def queue_limit(self) -> int:
        """Requests that may wait for a batch slot before more are refused (HTTP 429)."""
        return self.max_running if self.max_queued is None else self.max_queued

    @property
    def model_name(self) -> str:
        """The name clients use for the default model (OpenAI `model`)."""
        if self.served_model_name:
            return self.served_model_name
        return self.model.rstrip("/").split("/")[-1] if Path(self.model).is_dir() else self.model


# field -> (our flag, KAITO's alias flags). Booleans take an optional value, as HfArgumentParser's do.
_FLAGS: dict[str, tuple[str, ...]] = {
    "model": ("--model", "--pretrained_model_name_or_path"),
    "revision": ("--revision",),
    "served_model_name": ("--served-model-name", "--served_model_name"),
    "dtype": ("--dtype", "--torch_dtype"),
    "device": ("--device",),
    "engine": ("--engine",),
    "trust_remote_code": ("--trust-remote-code", "--trust_remote_code"),
    "load_in_4bit": ("--load-in-4bit", "--load_in_4bit"),
    "load_in_8bit": ("--load-in-8bit", "--load_in_8bit"),
    "pipeline": ("--pipeline",),
    "chat_template": ("--chat-template", "--chat_template"),
    "adapters_dir": ("--adapters-dir", "--adapters_dir", "--kaito-adapters-dir"),
    "combination_type": ("--combination-type", "--combination_type"),
    "max_model_len": ("--max-model-len", "--max_model_len"),
    "max_running": ("--max-running", "--max-num-seqs"),
    "max_queued": ("--max-queued",),
    "max_prefill_tokens": ("--max-prefill-tokens",),
    "engine_process": ("--engine-process",),
    "host": ("--host",),
    "port": ("--port",),
    "api_key": ("--api-key",),
}
_HELP: dict[str, str] = {
    "model": "Hugging Face repo id or local model directory (default: KAITO's /workspace/tfs/weights)",
    "revision": "model revision: a branch, tag or commit (default: main)",
    "served_model_name": "name clients put in `model` (default: the model's name)",
    "dtype": "auto, bfloat16, float16 or float32 (default: auto)",
    "device": "auto, cpu or cuda (default: auto: cuda when there is one)",
    "engine": f"{AUTO_ENGINE}, {', '.join(EngineName)} (default: {AUTO_ENGINE}: vllm on CUDA when installed)",
    "trust_remote_code": "run the model repo's own modelling code",
    "load_in_4bit": "load weights in 4 bits with bitsandbytes (CUDA only)",
    "load_in_8bit": "load weights in 8 bits with bitsandbytes (CUDA only)",
    "pipeline": "KAITO's /chat mode: text-generation or conversational",
    "chat_template": "a Jinja chat template, or a file holding one (default: the tokenizer's)",
    "adapters_dir": "folder of PEFT adapters, one subfolder each (default: /mnt/adapter; '' turns off)",
    "combination_type": "how adapters are combined into the default model (peft; default: svd)",
    "max_model_len": "longest prompt plus completion in tokens (default: the model's limit)",
    "max_running": "requests decoded together in one batch (default: 16)",
    "max_queued": "requests waiting beyond those; more get 429 with Retry-After (default: as many as "
                  "--max-running, KAITO's guard)",
    "max_prefill_tokens": "prompt tokens (rows x longest) prefilled in one step between decode steps; longer "
                          "prompts are prefilled in chunks of this size (default: 2048)",
    "engine_process": "transformers engine in its own process, beside the HTTP server's (default: true; "
                      "false runs it in a thread of the server's process)",
    "host": "address to listen on (default: 0.0.0.0)",
    "port": "port to listen on (default: 5000, as KAITO)",
    "api_key": "require `Authorization: Bearer KEY` on every route but health",
}
_BOOL_FIELDS = {"trust_remote_code", "load_in_4bit", "load_in_8bit", "engine_process"}
_DEVICES = ("auto", "cpu", "cuda")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kaito-inference",
        description="KAITO model server: /chat and the OpenAI API over a batching engine.",
        allow_abbrev=False,
    )
    for name, flags in _FLAGS.items():
        if name in _BOOL_FIELDS:
            parser.add_argument(*flags, dest=name, nargs="?", const=True, default=None, type=_parse_bool,
                                help=_HELP[name])
        else:
            parser.add_argument(*flags, dest=name, default=None, help=_HELP[name])
    # KAITO's --device_map is from_pretrained's device_map, which may be an accelerate map
    # ("balanced", "sequential"); our --device is only where the engine runs, so the two stay apart.
    parser.add_argument("--device_map", dest="device_map", default=None, metavar="MAP",
                        help="KAITO's device_map: auto, cpu, cuda, or an accelerate map passed to from_pretrained")
    parser.add_argument("--adapter-strength", dest="adapter_strength", action="append", default=[],
                        metavar="NAME=STRENGTH", help="strength of one adapter in the default mix")
    parser.add_argument("--kaito-config-file", dest="config_file", default=None, metavar="FILE",
                        help="KAITO's inference_config.yaml: its `vllm:` entries override these flags")
    return parser


def read_runtime_config(path: Path) -> dict[str, Any]:
    """The `vllm:` map of a KAITO inference_config.yaml ({} when it has none); SettingsError naming the file."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"--kaito-config-file: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"--kaito-config-file: {path} is not valid YAML: {exc}") from None
    flags = doc.get("vllm") if isinstance(doc, Mapping) else None
    if doc is not None and not isinstance(doc, Mapping) or flags is not None and not isinstance(flags, Mapping):
        raise SettingsError(f"--kaito-config-file: {path} must be a map with a `vllm:` map of flag: value")
    for key, value in (flags or {}).items():
        if isinstance(value, Mapping | list):
            raise SettingsError(f"--kaito-config-file: vllm.{key} in {path} must be a single value")
    return dict(flags or {})


def _apply_runtime_config(path: Path, values: dict[str, object]) -> dict[str, str]:
    """Set our fields from the file's `vllm:` entries; return the entries that are not our flags."""
    by_flag = {flag.lstrip("-").replace("_", "-"): name for name, flags in _FLAGS.items() for flag in flags}
    rest: dict[str, str] = {}
    for key, value in read_runtime_config(path).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        name = by_flag.get(str(key).replace("_", "-"))
        if name is None:
            rest[str(key)] = text
        else:
            values[name] = _parse_bool(text) if name in _BOOL_FIELDS else text
    return rest


def build_extra_kwargs(extra: Sequence[str]) -> dict[str, str | bool]:
    """KAITO's fold of unknown flags: `--k v` -> k="v"; `--k` then another flag or the end -> True."""
    result: dict[str, str | bool] = {}
    i = 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--") or len(token) == 2:
            raise SettingsError(f"unexpected argument {token!r}: extra arguments must be --name [value]")
        key, eq, inline = token[2:].partition("=")
        if eq:
            result[key] = inline
            i += 1
        elif i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            result[key] = extra[i + 1]
            i += 2
        else:
            result[key] = True
            i += 1
    return result


def _parse_strength(name: str, raw: str, source: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{source}: strength of adapter {name!r} must be a number, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{source}: strength of adapter {name!r} must be >= 0, got {raw!r}")
    return value


def build_settings(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ServerSettings:
    """Parse flags over `KAITO_*` environment values; raise `SettingsError` naming the bad one."""
    env = os.environ if env is None else env
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(list(argv or []))
    except SystemExit as exc:  # argparse already printed the usage line and the problem
        if exc.code == 0:  # --help
            raise
        raise SettingsError("invalid command line (see the message above)") from exc

    values: dict[str, object] = {}
    for name in _FLAGS:
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = _parse_bool(env_value) if name in _BOOL_FIELDS else env_value
    for name in _FLAGS:
        flag_value = getattr(args, name)
        if flag_value is not None:
            values[name] = flag_value
    if values.get("device") not in (None, *_DEVICES):
        source = "--device" if args.device is not None else f"{ENV_PREFIX}DEVICE"
        raise SettingsError(f"{source}: invalid device {values['device']!r} (use auto, cpu or cuda; "
                            "an accelerate device map goes in --device_map)")
    model_kwargs: dict[str, str | bool] = {}
    if args.device_map in _DEVICES:
        if args.device is None:  # an explicit --device wins; --device_map beats the environment
            values["device"] = args.device_map
    elif args.device_map is not None:
        model_kwargs["device_map"] = args.device_map
    values["model_kwargs"] = {**model_kwargs, **build_extra_kwargs(extra)}
    values["model_kwargs"].pop("allow_remote_files", None)  # type: ignore[union-attr]
    if values.get("dtype") not in (None, "auto", "bfloat16", "float16", "float32"):
        raise SettingsError(f"--dtype/--torch_dtype: invalid torch dtype {values['dtype']!r} "
                            "(use auto, bfloat16, float16 or float32)")
    if values.get("pipeline") not in (None, "text-generation", "conversational"):
        raise SettingsError(f"--pipeline: unsupported pipeline {values['pipeline']!r} "
                            "(use text-generation or conversational)")
    strengths: dict[str, float] = {}
    for item in args.adapter_strength:
        name, eq, raw = item.partition("=")
        if not eq or not name:
            raise SettingsError(f"--adapter-strength: expected NAME=STRENGTH, got {item!r}")
        strengths[name] = _parse_strength(name, raw, "--adapter-strength")
    values["adapter_strengths"] = strengths
    if args.config_file:
        values["config_file"] = args.config_file
        values["runtime_params"] = _apply_runtime_config(Path(args.config_file), values)
    try:
        return ServerSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_flag_of(err['loc'])}: {err['msg'].removeprefix('Value error, ')}" for err in exc.errors()
        )
        raise SettingsError(problems) from None


def _flag_of(loc: tuple) -> str:
    name = str(loc[0]) if loc else "?"
    return _FLAGS.get(name, (f"--{name}",))[0]


def compute_adapter_strength(settings: ServerSettings, adapter: str, env: Mapping[str, str]) -> float:
    """Strength of one adapter: a flag, else KAITO's `<adapter>=<strength>` env var, else 1.0."""
    if adapter in settings.adapter_strengths:
        return settings.adapter_strengths[adapter]
    raw = env.get(adapter)
    return 1.0 if raw is None else _parse_strength(adapter, raw, f"environment variable {adapter}")
