"""KAITO's runtime-parameter file (`inference.config`, key `inference_config.yaml`) for the vLLM server.

The file has a top-level `vllm:` map of vLLM command-line options (names without `--`), plus
`max_probe_steps` (read, unused, as in KAITO) and `kv_cache_cpu_memory_utilization` (CPU KV-cache
offload through LMCache; 0 turns it off). KAITO appended `--key str(value)` for each entry, which
turns YAML `true` into the token `True` and breaks switches. Here each entry is rendered by the
kind of the vLLM option it names (a switch, a list, a JSON config, a value) and then typed by vLLM's
own parser; an option vLLM does not have is an error naming the key, before anything starts.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kaito.runtime.inference.startup_errors import RuntimeConfigError

CONFIG_KEY = "inference_config.yaml"


class RuntimeParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vllm: dict[str, Any] = Field(default_factory=dict)
    max_probe_steps: int = Field(default=6, ge=1)
    kv_cache_cpu_memory_utilization: float = Field(default=0.5, ge=0, le=1)


def load_runtime_parameters(path: str | Path) -> RuntimeParameters:
    """Read and check the file; `RuntimeConfigError` names the file and the key at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuntimeConfigError("the runtime-parameter file does not exist", file=str(path)) from None
    except OSError as exc:
        raise RuntimeConfigError(f"the runtime-parameter file cannot be read: {exc.strerror}",
                                 file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RuntimeConfigError(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", file=str(path)) from None
    if data is None:
        return RuntimeParameters()
    if not isinstance(data, dict):
        raise RuntimeConfigError(f"expected a map with a `vllm:` section, got {type(data).__name__}",
                                 file=str(path))
    if data.get("vllm") is None:
        data = {**data, "vllm": {}}  # `vllm:` with only comments under it
    try:
        return RuntimeParameters.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problem = "unknown key (known: vllm, max_probe_steps, kv_cache_cpu_memory_utilization)" \
            if err["type"] == "extra_forbidden" else err["msg"]
        raise RuntimeConfigError(f"{key}: {problem}", field=key, file=str(path)) from None


def option_of(key: str) -> str:
    """`max_model_len` / `max-model-len` -> `--max-model-len`; a dotted JSON path keeps its tail."""
    head, dot, tail = key.strip().removeprefix("--").partition(".")
    return "--" + head.replace("_", "-") + dot + tail


def render_option(actions: dict[str, Any], key: str, value: Any, *, file: str | None = None) -> list[str]:
    """Command-line tokens for one `vllm:` entry, by the kind of vLLM option it names.

    `actions` is the parser's option-string table. Raises `RuntimeConfigError` naming `vllm.<key>`.
    """
    name = f"vllm.{key}"
    option = option_of(key)
    base = option.split(".", 1)[0]
    action = actions.get(base)
    if action is None:
        close = difflib.get_close_matches(base, [a for a in actions if a.startswith("--")], n=1)
        hint = f" (did you mean {close[0].removeprefix('--')}?)" if close else ""
        raise RuntimeConfigError(f"{name}: vLLM has no option {base}{hint}", field=name, file=file)
    if value is None:
        raise RuntimeConfigError(f"{name}: needs a value", field=name, file=file)
    if "." in option:  # a field inside a JSON config option: vLLM's parser reads the value as JSON
        return [f"{option}={json.dumps(value)}"]
    if action.nargs == 0:  # a switch: YAML true/false, not the text "True"
        switch = _as_bool(value)
        if switch is None:
            raise RuntimeConfigError(f"{name}: {base} is a switch; use true or false, got {value!r}",
                                     field=name, file=file)
        if switch:
            return [base] if base in action.option_strings else [action.option_strings[0]]
        negative = "--no-" + base.removeprefix("--")
        return [negative] if negative in actions else []  # a plain switch is off by default
    if isinstance(value, dict):
        return [f"{base}={json.dumps(value)}"]
    if isinstance(value, list):
        if action.nargs in ("+", "*") or isinstance(action.nargs, int):
            return [base, *(_scalar(v) for v in value)]
        raise RuntimeConfigError(f"{name}: {base} takes one value, got a list", field=name, file=file)
    return [f"{base}={_scalar(value)}"]


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


@dataclass(frozen=True, kw_only=True)
class KvCachePlan:
    """Extra engine settings for KV-cache transfer and CPU offload, and why they were chosen."""

    kv_transfer_config: dict[str, str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""


def plan_kv_cache(*, utilization: float, build: str, lmcache_installed: bool, role: str,
                  configured: bool, tensor_parallel: int, free_memory_gib: float) -> KvCachePlan:
    """KAITO's KV-cache wiring: NIXL for prefill/decode roles, LMCache CPU offload when asked.

    Offload is only wired when it can work: on vLLM's CPU build the KV cache already lives in host
    memory, and without the LMCache package vLLM would fail to start, so both are a logged no-op.
    """
    if configured:
        return KvCachePlan(note="kv-transfer-config is set; KAITO's KV-cache defaults are not applied")
    if role in ("prefill", "decode"):
        return KvCachePlan(kv_transfer_config={"kv_connector": "NixlConnector", "kv_role": "kv_both",
                                               "kv_load_failure_policy": "fail"},
                           note=f"KAITO_INFERENCE_ROLE={role}: NIXL KV transfer")
    if utilization <= 0:
        return KvCachePlan(note="KV-cache CPU offload is off")
    if build == "cpu":
        return KvCachePlan(note="KV-cache CPU offload is not needed: vLLM's CPU build keeps the KV cache in memory")
    if not lmcache_installed:
        return KvCachePlan(note="KV-cache CPU offload needs the lmcache package, which is not installed; it is off")
    per_gpu = free_memory_gib * utilization / max(tensor_parallel, 1)
    return KvCachePlan(
        kv_transfer_config={"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"},
        env={"LMCACHE_CHUNK_SIZE": "256", "LMCACHE_LOCAL_CPU": "True", "LMCACHE_MAX_LOCAL_CPU_SIZE": f"{per_gpu:.2f}"},
        note=f"KV-cache CPU offload through LMCache: {per_gpu:.2f} GiB of host memory per GPU",
    )
