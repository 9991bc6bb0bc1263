"""A small ModelFacts for the admission tests: KAITO's v0.3.2 test models and a few SKUs.

It mirrors what the v0.3.2 unit tests register (`test-validation`, `private-test-validation`) so
the table can exercise rules 3 and 4 through the same protocol the catalog implements.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaito.api.errors import FieldError
from kaito.api.facts import GpuFacts, PresetFacts

SKUS = {  # name: (GPU count, total GPU memory GiB), from KAITO's v0.3.2 validation table
    "Standard_NC6": (1, 12),
    "Standard_NC6s_v3": (1, 16),
    "Standard_NC12s_v3": (2, 32),
    "Standard_NC24ads_A100_v4": (1, 80),
    "Standard_ND96asr_v4": (8, 320),
}


@dataclass(frozen=True)
class Need:
    gpus: int
    per_gpu: int
    total: int


class FakeFacts:
    def __init__(self) -> None:
        both = frozenset({"lora", "qlora"})
        self.presets = {
            "test-validation": PresetFacts("test-validation", tuning_methods=both),
            "private-test-validation": PresetFacts("private-test-validation", access="private"),
            "deprecated-model": PresetFacts("deprecated-model", deprecated=True),
            "lora-only": PresetFacts("lora-only", tuning_methods=frozenset({"lora"})),
        }
        self.needs = {
            "test-validation": Need(1, 0, 14),
            "private-test-validation": Need(1, 14, 14),
            "fit-8gpu": Need(8, 19, 152),
            "fit-1x16": Need(1, 16, 16),
            "fit-2gpu": Need(2, 0, 0),
            "fit-15pergpu": Need(1, 15, 0),
        }
        for name in self.needs:
            self.presets.setdefault(name, PresetFacts(name))

    def preset(self, name: str) -> PresetFacts | None:
        if name == "explode":
            raise RuntimeError("catalog unavailable")
        if "/" in name:  # any Hugging Face id: accepted, size unknown here
            return PresetFacts(name, known_size=False)
        return self.presets.get(name.lower())

    def instance_type(self, name: str) -> GpuFacts | None:
        sku = SKUS.get(name)
        return GpuFacts(name, sku[0], sku[1]) if sku else None

    def vllm_options(self) -> frozenset[str] | None:
        return None  # option names are the catalog's data; these tables do not check them

    def check_instance_type(self, name: str) -> list[FieldError]:
        if not name or name in SKUS or name.startswith(("Standard_N", "Standard_D")):
            return []
        return [FieldError("resource.instanceType",
                           f"Unsupported instance type {name}. Supported SKUs: {', '.join(SKUS)}")]

    def check_fit(self, instance_type: str, count: int, preset_name: str | None) -> list[FieldError]:
        path = "resource.instanceType"
        sku = SKUS.get(instance_type)
        if sku is None:
            return self.check_instance_type(instance_type)
        if preset_name and "/" in preset_name:
            return [
                FieldError(
                    path, f"GPU memory fit not checked: the size of {preset_name} is unknown", "warning"
                )
            ]
        need = self.needs.get(preset_name or "")
        if need is None:
            return []
        gpus, mem = sku
        errs = []
        if count * gpus < need.gpus:
            errs.append(
                FieldError(path, f"Insufficient number of GPUs: {instance_type} provides {count * gpus}")
            )
        if mem // gpus < need.per_gpu:
            errs.append(
                FieldError(path, f"Insufficient per GPU memory: {instance_type} provides {mem // gpus}Gi")
            )
        if count * mem < need.total:
            errs.append(
                FieldError(path, f"Insufficient total GPU memory: {instance_type} has {count * mem}Gi")
            )
        return errs
