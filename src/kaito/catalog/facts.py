"""The catalog's answers to the admission rules' questions (`kaito.api.facts.ModelFacts`).

`kaito.api` may not import the catalog, so admission asks through that protocol. Three kinds of preset
name are understood, as KAITO v0.12 does: a catalog name or alias (`phi-4`, `microsoft/phi-4`), any
Hugging Face `org/model` id, and a local model directory. The size of a model the catalog does not
list comes from an injected callable (normally `kaito.catalog.hub_cache.read_model_size`).

`build_catalog_facts` is the one way every caller (`kaito validate`, `kaito render`, `kaito apply`,
the webhook, the controller) gets its facts, so they all give the same verdict: earlier each caller
assembled them differently, and a local model too big for its SKU was refused by one command and
rendered by another.
"""

from __future__ import annotations

from collections.abc import Callable

from kaito.api.errors import FieldError
from kaito.api.facts import GpuFacts, PresetFacts
from kaito.catalog import hub_cache, presets, sizing, skus, vllm_options

ModelSizeReader = Callable[[str], "float | None"]
GENERIC_TUNING = frozenset({"lora", "qlora"})  # our trainer tunes any causal LM with LoRA/QLoRA
GENERIC_RUNTIMES = ("transformers", "vllm")


def build_catalog_facts(cloud: str = "azure", *, read_local_sizes: bool = True) -> CatalogFacts:
    """The facts every admission caller uses: the catalog, the cloud's SKU table, and the sizes of
    models outside the catalog read from the local Hugging Face cache or directory when they are
    there (`read_local_sizes=False` only for callers that must not touch the disk at all).

    Raises ValueError for an unknown cloud.
    """
    return CatalogFacts(cloud=cloud, local_model_size=hub_cache.read_model_size if read_local_sizes else None)


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
                runtimes=tuple(known.runtimes),
                weights_gib=known.model_size_gib or None,
                token_limit=known.model.token_limit,
            )
        if hub_cache.looks_like_hub_id(name) or hub_cache.looks_like_local_dir(name):
            size = self._outside_size(name)
            return PresetFacts(
                name=name,
                access="public",
                tuning_methods=GENERIC_TUNING,
                known_size=size is not None,
                runtimes=GENERIC_RUNTIMES,
                weights_gib=size,
            )
        return None

    def vllm_options(self) -> frozenset[str] | None:
        return vllm_options.load_vllm_options().names

    def instance_type(self, name: str) -> GpuFacts | None:
        sku = skus.validation_sku(name, self.cloud) if name else None
        if sku is None:
            return None
        return GpuFacts(instance_type=sku.instance_type, gpu_count=sku.gpu_count,
                        gpu_memory_gib=sku.gpu_memory_gib, gpu_model=sku.gpu_model)

    def check_instance_type(self, name: str) -> list[FieldError]:
        """KAITO rule 4: a SKU of the cloud's table, or (Azure) any N- or D-series VM."""
        if not name or skus.validation_sku(name, self.cloud) is not None or skus.accepts_unknown_sku(name, self.cloud):
            return []
        return [FieldError(
            sizing.INSTANCE_TYPE_PATH,
            f"Unsupported instance type {name}. Supported SKUs: " + ", ".join(skus.supported_skus(self.cloud)),
        )]

    def check_fit(self, instance_type: str, count: int, preset_name: str | None) -> list[FieldError]:
        """Rules 3 and 4 of kaito.md §2.1 for an inference workspace; never raises."""
        if not instance_type:
            return []
        sku = skus.validation_sku(instance_type, self.cloud)
        if sku is None:
            return self.check_instance_type(instance_type)
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
