"""PEFT adapters from the adapters directory: KAITO's weighted mix, and each adapter by name.

KAITO v0.3.2 loads every subdirectory of `/mnt/adapter` holding `adapter_config.json`, combines
them with `add_weighted_adapter` using the strengths from environment variables named after the
directories, and serves only the combination. We keep that combination as the default model and
also keep each adapter, so `model: <adapter>` in a request uses that adapter alone (PEFT's
mixed-batch forward runs rows with different adapters in one batch).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COMBINED_ADAPTER = "combined_adapter"  # KAITO's name for the weighted mix
BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

log = logging.getLogger("kaito.runtime.inference")


class AdapterError(ValueError):
    """An adapter directory cannot be used; the message names it."""


@dataclass(frozen=True, kw_only=True)
class AdapterSpec:
    name: str
    path: Path
    strength: float


def discover_adapters(adapters_dir: Path | None) -> list[tuple[str, Path]]:
    """Subdirectories holding `adapter_config.json`, sorted by name (KAITO's rule)."""
    if adapters_dir is None or not adapters_dir.is_dir():
        return []
    found = []
    for child in sorted(adapters_dir.iterdir()):
        if child.is_dir() and (child / "adapter_config.json").is_file():
            if not _NAME.match(child.name) or child.name in (COMBINED_ADAPTER, BASE_ADAPTER):
                raise AdapterError(f"adapter directory {child}: name {child.name!r} cannot be a model name")
            found.append((child.name, child))
    return found


def build_adapter_specs(found: list[tuple[str, Path]], strength_of: Callable[[str], float]) -> list[AdapterSpec]:
    return [AdapterSpec(name=name, path=path, strength=strength_of(name)) for name, path in found]


def apply_adapters(model, specs: list[AdapterSpec], combination_type: str):
    """Wrap `model` in a PeftModel holding every adapter plus their weighted combination."""
    if not specs:
        return model
    from peft import PeftModel

    first, *rest = specs
    try:
        peft_model = PeftModel.from_pretrained(model, str(first.path), adapter_name=first.name)
        for spec in rest:
            peft_model.load_adapter(str(spec.path), adapter_name=spec.name)
    except Exception as exc:  # peft raises many types for a bad directory; name the directory
        raise AdapterError(f"cannot load adapter from {_failing_path(exc, specs)}: {exc}") from exc
    try:
        peft_model.add_weighted_adapter(
            adapters=[s.name for s in specs], weights=[s.strength for s in specs],
            adapter_name=COMBINED_ADAPTER, combination_type=combination_type,
        )
    except Exception as exc:
        raise AdapterError(f"cannot combine adapters {[s.name for s in specs]} "
                           f"with combination_type={combination_type!r}: {exc}") from exc
    peft_model.set_adapter(COMBINED_ADAPTER)
    peft_model.eval()
    log.info("Adapter added: %s", ", ".join(sorted(s.name for s in specs)))
    return peft_model


def route_rows(model, loaded: tuple[str, ...], wanted: list[str | None]) -> dict:
    """The forward's keyword arguments that give each row of a batch its adapter (None: the mix).

    One adapter for the whole batch is switched to, rather than paying PEFT's per-row split.
    """
    if not loaded:
        return {}
    names = [name or COMBINED_ADAPTER for name in wanted]
    if len(set(names)) == 1:
        if model.active_adapter != names[0]:
            model.set_adapter(names[0])
        return {}
    return {"adapter_names": names}


def _failing_path(exc: Exception, specs: list[AdapterSpec]) -> str:
    text = str(exc)
    for spec in specs:
        if str(spec.path) in text:
            return str(spec.path)
    return ", ".join(str(s.path) for s in specs)
