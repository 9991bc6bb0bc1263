"""From our command line to vLLM's arguments: the same `kaito serve` flags, plus vLLM's own.

A vLLM pod's command line has three parts, resolved in this order (later wins, as in KAITO):

1. our flags (`--model`, `--served-model-name`, `--dtype`, `--adapters-dir`, `--port`, KAITO v0.3.2's
   aliases...), checked by the model server's own settings parser and mapped to vLLM's options;
   adapters found under `--adapters-dir` become LoRA modules named after their folders;
2. every other flag, passed to vLLM untouched (`--tensor-parallel-size`, `--kv-events-config`, ...),
   minus KAITO's wrapper flags (`--kaito-config-file`, `--kaito-kv-cache-cpu-memory-utilization`,
   `--kaito-max-probe-steps`, `--kaito-disable-rate-limit`);
3. the `vllm:` entries of the runtime-parameter file, rendered by option kind (`vllm_config`).

`plan_launch` does all of that without vLLM; `parse_vllm_args` types the result with vLLM's parser
and attributes each error to the command line (exit 2) or to a key of the file (exit 3).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaito.runtime.inference import adapters as adapters_mod
from kaito.runtime.inference import settings as settings_mod
from kaito.runtime.inference.startup_errors import ArgumentsError, RuntimeConfigError
from kaito.runtime.inference.vllm_config import RuntimeParameters, load_runtime_parameters, render_option

_MAX_MODEL_LEN_FLAGS = ("--max-model-len", "--max_model_len")
_MAX_MODEL_LEN_ENV = settings_mod.ENV_PREFIX + "MAX_MODEL_LEN"
_CONFIG_FILE_FLAGS = ("--kaito-config-file",)
DEFAULT_UVICORN_LOG_LEVEL = "warning"


class VllmParseError(Exception):
    """vLLM's parser refused the arguments (raised by the parser's `error`, instead of exiting)."""


def build_kaito_parser() -> argparse.ArgumentParser:
    """KAITO v0.12's wrapper flags (`inference_api.py`), with its defaults."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--kaito-config-file", default="")
    parser.add_argument("--kaito-max-probe-steps", type=int, default=None)
    parser.add_argument("--kaito-kv-cache-cpu-memory-utilization", type=float, default=None)
    parser.add_argument("--kaito-disable-rate-limit", action="store_true", default=False)
    return parser


@dataclass(frozen=True, kw_only=True)
class VllmLaunch:
    settings: settings_mod.ServerSettings  # our flags, checked as for every engine
    ours: tuple[str, ...]  # our flags as vLLM options
    passthrough: tuple[str, ...]  # the operator's vLLM flags, untouched
    from_file: tuple[tuple[str, Any], ...]  # the file's `vllm:` entries, in file order
    config_file: str | None
    parameters: RuntimeParameters | None
    kv_cache_cpu_memory_utilization: float
    max_probe_steps: int
    rate_limit: bool
    adapters: tuple[tuple[str, Path], ...]
    max_lora_rank: int = 0


def _without(argv: Sequence[str], extras: Sequence[str]) -> list[str]:
    """`argv` minus `extras`, which argparse returns as an ordered subsequence of it."""
    kept, i = [], 0
    for token in argv:
        if i < len(extras) and token == extras[i]:
            i += 1
        else:
            kept.append(token)
    return kept


def _pop_option(argv: Sequence[str], names: Sequence[str]) -> tuple[list[str], str | None]:
    """Remove every `--name v` / `--name=v` of `names`; return the rest and the last value."""
    rest: list[str] = []
    value: str | None = None
    i = 0
    while i < len(argv):
        token = argv[i]
        flag, eq, inline = token.partition("=")
        if flag in names:
            if eq:
                value = inline
                i += 1
            else:
                value = argv[i + 1] if i + 1 < len(argv) else ""
                i += 2
            continue
        rest.append(token)
        i += 1
    return rest, value


def _lora_rank(path: Path) -> int:
    try:
        return int(json.loads((path / "adapter_config.json").read_text()).get("r", 8))
    except (OSError, ValueError, TypeError) as exc:
        raise ArgumentsError(f"adapter {path.name}: cannot read adapter_config.json: {exc}",
                             field="--adapters-dir", file=str(path)) from None


def plan_launch(argv: Sequence[str], env: Mapping[str, str],
                read_parameters: Callable[[str], RuntimeParameters] = load_runtime_parameters) -> VllmLaunch:
    """Split and check the command line; read the runtime-parameter file and the adapters dir."""
    argv = list(argv)
    _, extras = settings_mod.build_parser().parse_known_args(argv)
    ours_argv, max_model_len = _pop_option(_without(argv, extras), _MAX_MODEL_LEN_FLAGS)
    # our settings read the file for the transformers engine (its flags only, as text); here vLLM's
    # parser types all of it, so the settings never see it
    ours_argv, config_file = _pop_option(ours_argv, _CONFIG_FILE_FLAGS)
    env = dict(env)
    if max_model_len is None:
        max_model_len = env.get(_MAX_MODEL_LEN_ENV)
    env.pop(_MAX_MODEL_LEN_ENV, None)  # vLLM types it ("auto", "4k"); our int-only check must not
    try:
        settings = settings_mod.build_settings(ours_argv, env)
    except settings_mod.SettingsError as exc:
        raise ArgumentsError(str(exc)) from None
    kaito, passthrough = build_kaito_parser().parse_known_args(extras)
    config_file = config_file or kaito.kaito_config_file or None
    parameters = read_parameters(config_file) if config_file else None
    utilization = kaito.kaito_kv_cache_cpu_memory_utilization
    if utilization is None:  # the command line beats the file, so an operator's 0 stays 0
        utilization = parameters.kv_cache_cpu_memory_utilization if parameters else 0.5
    probe_steps = kaito.kaito_max_probe_steps or (parameters.max_probe_steps if parameters else 6)
    if settings.load_in_8bit:
        raise ArgumentsError("--load-in-8bit: vLLM has no 8-bit bitsandbytes mode; use --load-in-4bit or "
                             "--engine transformers", field="--load-in-8bit")
    try:
        found = adapters_mod.discover_adapters(settings.adapters_dir)
    except adapters_mod.AdapterError as exc:
        raise ArgumentsError(str(exc), field="--adapters-dir") from None
    user_loras = any(t.split("=", 1)[0] == "--lora-modules" for t in passthrough)
    adapters = () if user_loras else tuple(found)  # KAITO: an explicit --lora-modules wins
    rank = max((_lora_rank(path) for _, path in adapters), default=0)
    ours = _map_settings(settings, max_model_len, adapters)
    return VllmLaunch(settings=settings, ours=tuple(ours), passthrough=tuple(passthrough),
                      from_file=tuple(parameters.vllm.items()) if parameters else (),
                      config_file=config_file, parameters=parameters,
                      kv_cache_cpu_memory_utilization=utilization, max_probe_steps=probe_steps,
                      rate_limit=not kaito.kaito_disable_rate_limit, adapters=adapters, max_lora_rank=rank)


def _map_settings(settings: settings_mod.ServerSettings, max_model_len: str | None,
                  adapters: Sequence[tuple[str, Path]]) -> list[str]:
    """Our settings as vLLM options; only what was given, so vLLM's own defaults stay in force."""
    given = settings.model_fields_set
    out = [f"--model={settings.model}", f"--served-model-name={settings.model_name}",
           f"--host={settings.host}", f"--port={settings.port}",
           f"--uvicorn-log-level={DEFAULT_UVICORN_LOG_LEVEL}"]
    if "revision" in given:
        out.append(f"--revision={settings.revision}")
    if "dtype" in given:
        out.append(f"--dtype={settings.dtype}")
    if settings.trust_remote_code:
        out.append("--trust-remote-code")
    if settings.load_in_4bit:
        out.append("--quantization=bitsandbytes")
    if settings.chat_template:
        out.append(f"--chat-template={settings.chat_template}")
    if max_model_len:
        out.append(f"--max-model-len={max_model_len}")
    if "max_running" in given:
        out.append(f"--max-num-seqs={settings.max_running}")
    if settings.api_key:
        out.append(f"--api-key={settings.api_key}")
    if adapters:
        out += ["--enable-lora", f"--max-loras={len(adapters)}", "--lora-modules",
                *(f"{name}={path}" for name, path in adapters)]
    return out


def _parse(parser, tokens: Sequence[str]) -> argparse.Namespace:
    try:
        return parser.parse_args(list(tokens))
    except VllmParseError:
        raise
    except argparse.ArgumentError as exc:  # a parser built with exit_on_error=False raises these itself
        raise VllmParseError(str(exc)) from None
    except (ValueError, TypeError, json.JSONDecodeError) as exc:  # vLLM's own checks in parse_args
        raise VllmParseError(str(exc)) from None


def build_file_tokens(launch: VllmLaunch, parser) -> list[str]:
    """The file's entries as tokens, each checked alone so an error names its key."""
    tokens: list[str] = []
    actions = parser._option_string_actions  # argparse's table of option strings (vLLM reads it too)
    for key, value in launch.from_file:
        rendered = render_option(actions, key, value, file=launch.config_file)
        try:
            _parse(parser, rendered)
        except VllmParseError as exc:
            raise RuntimeConfigError(f"vllm.{key}: {exc}", field=f"vllm.{key}", file=launch.config_file) from None
        tokens += rendered
    return tokens


def _lora_rank_option(parser, rank: int) -> list[str]:
    action = parser._option_string_actions.get("--max-lora-rank")
    if rank <= 0 or action is None:
        return []
    choices = sorted(action.choices or ()) or [rank]
    fitting = [c for c in choices if c >= rank]
    return [f"--max-lora-rank={fitting[0] if fitting else rank}"]


def parse_vllm_args(launch: VllmLaunch, parser, extra: Sequence[str] = ()) -> argparse.Namespace:
    """vLLM's namespace for this launch, typed by vLLM's `parser` (whose `error` raises)."""
    file_tokens = build_file_tokens(launch, parser)
    command = [*launch.ours, *_lora_rank_option(parser, launch.max_lora_rank), *extra, *launch.passthrough]
    try:
        _parse(parser, command)
    except VllmParseError as exc:
        raise ArgumentsError(f"vLLM refused the command line: {exc}") from None
    try:
        return _parse(parser, [*command, *file_tokens])
    except VllmParseError as exc:
        raise RuntimeConfigError(f"vLLM refused the runtime parameters together with the command line: {exc}",
                                 file=launch.config_file) from None
