"""`CatalogFacts`: the catalog's answers to the admission rules' questions (`kaito.api.facts.ModelFacts`).

`kaito.api` may not import the catalog, so validation asks through this protocol. Three kinds of preset
name are understood, as KAITO v0.12 does: a catalog name or alias (`phi-4`, `microsoft/phi-4`), any
Hugging Face `org/model` id, and a local model directory. The size of a model the catalog does not
list comes from an injected callable (normally `kaito.catalog.hub_cache.read_model_size`); without
one, CatalogFacts does no I/O at all and such fit checks are skipped with a warning.
"""

from __future__ import annotations

from collections.abc import Callable

from kaito.api.errors import FieldError
from kaito.api.facts import PresetFacts
from kaito.catalog import hub_cache, presets, sizing, skus

ModelSizeReader = Callable[[str], "float | None"]
GENERIC_TUNING = frozenset({"lora", "qlora"})  # our trainer tunes any causal LM with LoRA/QLoRA


class CatalogFacts:
    def __init__(self, cloud: str = "azure", local_model_size: ModelSizeReader | None = None):
        if cloud not in skus.CLOUDS:
            raise ValueError(f"unknown cloud {cloud!r}; expected one of {', '.join(skus.CLOUDS)}")
        self.cloud = cloud
        self._size_of = local_model_size

    def _outside_size(self, name: str) -> float | None:
        if self._size_of is None:
            return None
        try:
            return self._size_of(name)
        except Exception:  # a broken cache must never turn admission into a crash
            return None

    def preset(self, name: str) -> PresetFacts | None:
        if not isinstance(name, str) or not name.strip():
            return None
        known = presets.get_preset(name)
        if known is not None:
            return PresetFacts(
                name=known.name,
                access=known.access,
                tuning_methods=known.tuning_methods,
                deprecated=known.deprecated,
                known_size=True,
            )
        if hub_cache.looks_like_hub_id(name) or hub_cache.looks_like_local_dir(name):
            return PresetFacts(
                name=name,
                access="public",
                tuning_methods=GENERIC_TUNING,
                known_size=self._outside_size(name) is not None,
            )
        return None

    def check_fit(self, instance_type: str, count: int, preset_name: str | None) -> list[FieldError]:
        """Rules 3 and 4 of reference §2.1 for an inference workspace; never raises."""
        if not instance_type:
            return []
        sku = skus.validation_sku(instance_type, self.cloud)
        if sku is None:
            if skus.accepts_unknown_sku(instance_type, self.cloud):
                return []
            return [FieldError(
                sizing.INSTANCE_TYPE_PATH,
                f"Unsupported instance type {instance_type}. Supported SKUs: "
                + ", ".join(skus.supported_skus(self.cloud)),
            )]
        if not preset_name:
            return []
        count = count if isinstance(count, int) and count > 0 else 1
        known = presets.get_preset(preset_name)
        if known is not None:
            return sizing.check_fit(known, sku, count)
        if not (hub_cache.looks_like_hub_id(preset_name) or hub_cache.looks_like_local_dir(preset_name)):
            return []  # an unknown preset name is rule 9's business, reported on inference.preset.name
        size = self._outside_size(preset_name)
        if size is None:
            return [FieldError(
                sizing.INSTANCE_TYPE_PATH,
                f"GPU memory fit not checked: the weight size of {preset_name} is unknown here (not in the "
                "catalog, not in the local Hugging Face cache)",
                severity="warning",
            )]
        total = count * sku.gpu_memory_gib
        if total < size:
            return [FieldError(
                sizing.INSTANCE_TYPE_PATH,
                f"Insufficient total GPU memory: {count} × instance type {sku.instance_type} has a total of "
                f"{presets.format_gib(total)}, but the weights of {preset_name} need "
                f"{presets.format_gib(round(size, 2))}",
            )]
        return []
