"""ModelFacts with the test models KAITO v0.12's v1beta1 validation tests register.

KAITO's table sizes one model through a global it changes per case; here each size is its own
model name (`test-validation-16` has 16 GiB of weights). The test models list vLLM first, as v0.12
runs vLLM unless `kaito.sh/runtime` says transformers.
"""

from __future__ import annotations

from kaito.api.errors import FieldError
from kaito.api.facts import GpuFacts, PresetFacts

SKUS = {  # name: (GPUs, GiB of GPU memory per node), as KAITO's Azure table has them
    "Standard_ND96asr_v4": (8, 320),
    "Standard_NV36ads_A10_v5": (1, 24),
    "Standard_NC24ads_A100_v4": (1, 80),
    "Standard_NC6s_v3": (1, 16),
}
BOTH = ("vllm", "transformers")
LORA = frozenset({"lora", "qlora"})


def _model(name: str, weights: float | None, **extra) -> PresetFacts:
    return PresetFacts(name, runtimes=BOTH, weights_gib=weights, tuning_methods=LORA, **extra)


PRESETS = {
    "test-validation": _model("test-validation", None, token_limit=4096),  # no size: fit checks skipped
    "test-validation-1": _model("test-validation-1", 1),
    "test-validation-8": _model("test-validation-8", 8),
    "test-validation-16": _model("test-validation-16", 16),
    "test-validation-152": _model("test-validation-152", 152),
    "test-validation-static": _model("test-validation-static", 16),
    "test-validation-download": _model("test-validation-download", 32, access="gated"),
    "test-large-model": _model("test-large-model", 131),
    "test-small-a10": _model("test-small-a10", 7),
    # KAITO's "model weights packaged" preset: here, weights in the user's image (a private preset).
    "test-validation-packaged": _model("test-validation-packaged", 16, access="private"),
    "phi-2": _model("phi-2", 5, deprecated=True),
}


class V012Facts:
    def preset(self, name: str) -> PresetFacts | None:
        return PRESETS.get(name.lower())

    def instance_type(self, name: str) -> GpuFacts | None:
        sku = SKUS.get(name)
        return GpuFacts(name, sku[0], sku[1]) if sku else None

    def vllm_options(self) -> frozenset[str] | None:
        return None  # option names are the catalog's data; these tables do not check them

    def check_instance_type(self, name: str) -> list[FieldError]:
        if not name or name in SKUS or name.startswith(("Standard_N", "Standard_D")):
            return []
        return [FieldError("resource.instanceType", f"Unsupported instance type {name}. Supported SKUs: "
                                                    + ", ".join(SKUS))]

    def check_fit(self, instance_type: str, count: int, preset_name: str | None) -> list[FieldError]:
        return self.check_instance_type(instance_type)  # v0.3.2's rules are not what this table tests
