"""`inference.config`: the runtime-parameter ConfigMap (kaito-v0.12.md §1.3), judged from its data.

A pure function of the ConfigMap's `data` (None when it does not exist): whoever admits reads it.
The key `inference_config.yaml` holds a `vllm:` map of runtime flags (names without `--`) whose values
become `--flag value` on the command line, so each value must be a scalar; `max-model-len`, when
set, must be a whole number no larger than the model's context window; and each key must name an
option of the vLLM the pods run (the names the catalog ships), an error for the vLLM runtime and a
warning for transformers, which reads only the few keys it knows.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import yaml

from kaito.api import labels
from kaito.api.errors import FieldError

CONFIG_KEY = "inference_config.yaml"
PATH = "inference.config"
# The chart ships this template; v1beta1 never mounts it by default (nothing names it).
TEMPLATE_NAME = "inference-params-template"
MAX_MODEL_LEN = "max-model-len"


def validate_inference_config(name: str, data: Mapping[str, str] | None, namespace: str,
                              token_limit: int | None = None, *, vllm_options: frozenset[str] | None = None,
                              runtime: str | None = None) -> list[FieldError]:
    """Problems with ConfigMap `name`'s data for a Workspace whose model reads `token_limit` tokens and
    runs on `runtime`; `vllm_options`: the `--option` names keys may take (None: not checked)."""
    if data is None:
        return [FieldError(PATH, f"ConfigMap {name!r} named in inference.config does not exist in namespace "
                                 f"{namespace!r}")]
    raw = data.get(CONFIG_KEY)
    if raw is None:
        return [FieldError(PATH, f"ConfigMap {name!r} has no key {CONFIG_KEY!r}")]
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        return [FieldError(PATH, f"{CONFIG_KEY} in ConfigMap {name!r} is not valid YAML: {exc}")]
    if doc is None:
        return []
    if not isinstance(doc, Mapping):
        return [FieldError(PATH, f"{CONFIG_KEY} in ConfigMap {name!r} must be a map (with a 'vllm:' section)")]
    flags = doc.get("vllm")
    if flags is None:
        return []
    if not isinstance(flags, Mapping):
        return [FieldError(PATH, f"'vllm' in {CONFIG_KEY} of ConfigMap {name!r} must be a map of flag: value")]
    errs = [
        FieldError(PATH, f"vllm.{key} in ConfigMap {name!r} must be a single value (a string, number or "
                         f"boolean), not a {type(value).__name__}")
        for key, value in flags.items()
        if isinstance(value, Mapping | list)
    ]
    errs += _check_max_model_len(flags.get(MAX_MODEL_LEN), name, token_limit)
    if vllm_options:
        severity = "warning" if runtime == labels.RUNTIME_TRANSFORMERS else "error"
        errs += [FieldError(PATH, f"{problem} (ConfigMap {name!r})", severity)
                 for key in flags if (problem := find_unknown_option(key, vllm_options))]
    return errs


def option_of(key: object) -> str:
    """The option a `vllm:` key names, as the runtime reads it: `max_num_seqs` and `max-num-seqs` are
    `--max-num-seqs`; a dotted key (`compilation-config.level`) sets a field of `--compilation-config`."""
    head = str(key).strip().removeprefix("--").split(".", 1)[0]
    return "--" + head.replace("_", "-")


def find_unknown_option(key: object, vllm_options: frozenset[str]) -> str | None:
    """`vllm.<key>: vLLM has no option --x (did you mean y?)`, or None when vLLM has that option."""
    option = option_of(key)
    if option in vllm_options:
        return None
    close = difflib.get_close_matches(option, sorted(vllm_options), n=1)
    hint = f" (did you mean {close[0].removeprefix('--')}?)" if close else ""
    return f"vllm.{key}: vLLM has no option {option}{hint}"


def _check_max_model_len(value: object, name: str, token_limit: int | None) -> list[FieldError]:
    if value is None or isinstance(value, Mapping | list) or not str(value).strip() or not token_limit:
        return []
    text = str(value).strip()
    if isinstance(value, bool) or not text.lstrip("+-").isdigit():
        return [FieldError(PATH, f"vllm.{MAX_MODEL_LEN} in ConfigMap {name!r} must be a whole number, got {text!r}")]
    if int(text) > token_limit:
        return [FieldError(PATH, f"vllm.{MAX_MODEL_LEN} {int(text)} in ConfigMap {name!r} exceeds the model's "
                                 f"context window of {token_limit} tokens")]
    return []
