"""Rules about the model a preset names: its runtime, its access secret, adapters on vLLM.

The runtime is chosen as the controller chooses it (`kaito.sh/runtime` when the preset runs on that
runtime, else the preset's first runtime), so admission judges the pod that will actually run.
Access follows KAITO v0.12 §1.4 with one deliberate change: a gated catalog model without
`modelAccessSecret` is flagged with a warning (KAITO lets it through silently and the download fails
in the pod); it is not refused, because the weights may already be on the node (local cluster,
`kaito.sh/use-local-weights`).
"""

from __future__ import annotations

from collections.abc import Mapping

from kaito.api import labels
from kaito.api.errors import FieldError
from kaito.api.facts import PresetFacts
from kaito.api.hub import InferenceSpec, PresetSpec
from kaito.api.validation.context import RuleSet

RUNTIME_PATH = f"metadata.annotations[{labels.ANNOTATION_RUNTIME}]"


def compute_runtime(annotations: Mapping[str, str], found: PresetFacts | None,
                    node_gpu_memory_gib: float | None = None) -> str:
    """The engine the pods will run: the annotation when the preset supports it, else its default.

    The transformers runtime serves from one node; a model whose weights exceed one node's GPU
    memory runs on vLLM (which spreads it over nodes) when the preset supports vLLM, as KAITO v0.12
    would run it (vLLM is its default). Only an explicit annotation keeps transformers then.
    """
    runtimes = found.runtimes if found is not None and found.runtimes else (labels.RUNTIME_TRANSFORMERS,)
    asked = annotations.get(labels.ANNOTATION_RUNTIME)
    if asked in runtimes:
        return asked
    default = runtimes[0]
    weights = found.weights_gib if found is not None else None
    if (default == labels.RUNTIME_TRANSFORMERS and labels.RUNTIME_VLLM in runtimes and weights
            and node_gpu_memory_gib and weights > node_gpu_memory_gib):
        return labels.RUNTIME_VLLM
    return default


def validate_runtime_choice(annotations: Mapping[str, str], found: PresetFacts) -> list[FieldError]:
    """A known runtime the preset cannot run on is refused: the user asked for something we cannot do."""
    asked = annotations.get(labels.ANNOTATION_RUNTIME)
    if asked not in (labels.RUNTIME_VLLM, labels.RUNTIME_TRANSFORMERS) or asked in found.runtimes:
        return []
    return [FieldError(RUNTIME_PATH, f"preset {found.name!r} does not run on the {asked} runtime "
                                     f"(it runs on: {', '.join(found.runtimes)})")]


def validate_model_access(preset: PresetSpec, found: PresetFacts, path: str,
                          rules: RuleSet = RuleSet.V1BETA1) -> list[FieldError]:
    """`presetOptions.modelAccessSecret`: needed for gated models, meaningless for private images."""
    secret = preset.preset_options.model_access_secret if preset.preset_options else None
    secret_path = f"{path}.presetOptions.modelAccessSecret"
    if secret and not found.downloads_at_runtime:
        return [FieldError(secret_path, f"preset {found.name!r} takes its weights from its image, not from "
                                        "Hugging Face: it does not use a modelAccessSecret")]
    if found.access == "gated" and not secret:
        secret_field = "modelAccessSecret" if rules is RuleSet.V1BETA1 else "kaito.sh/v1beta1's modelAccessSecret"
        return [FieldError(secret_path, f"model {found.name!r} is gated on Hugging Face: its download needs a "
                                        f"token ({secret_field}, a Secret with key {labels.HF_TOKEN_KEY}); "
                                        "without one it fails unless the weights are already on the node",
                           "warning")]
    return []


def validate_deprecated(preset: PresetSpec, found: PresetFacts, path: str, rules: RuleSet) -> list[FieldError]:
    """KAITO v0.12 no longer serves deprecated models (v1beta1 refuses them); v0.3.2 still did."""
    if not found.deprecated:
        return []
    if rules is RuleSet.V1BETA1:
        return [FieldError(f"{path}.name", f"model {preset.name!r} is deprecated and no longer served "
                                           "(kaito.sh/v1beta1); pick a current preset (`kaito models`)")]
    return [FieldError(f"{path}.name", f"preset {preset.name!r} is deprecated", "warning")]


def validate_adapters_on_runtime(inf: InferenceSpec, runtime: str, rules: RuleSet) -> list[FieldError]:
    """vLLM serves each adapter as its own model and cannot mix them by strength (KAITO v0.12)."""
    if rules is not RuleSet.V1BETA1 or runtime != labels.RUNTIME_VLLM:
        return []
    return [
        FieldError(f"inference.adapters[{i}].strength",
                   "the vLLM runtime does not support adapter strength: remove it, or run the "
                   f"transformers runtime ({labels.ANNOTATION_RUNTIME}: transformers)")
        for i, adapter in enumerate(inf.adapters or [])
        if adapter.strength is not None
    ]
