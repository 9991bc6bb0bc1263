"""Rules about the model a preset names: its runtime, its access secret, adapters on vLLM.

The runtime is chosen as the controller chooses it (`kaito.sh/runtime` when the preset runs on that
runtime, else the default of the version the Workspace was written in: vLLM for v1beta1, the preset's
first runtime for v1alpha1), so admission judges the pod that will actually run.
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
                    node_gpu_memory_gib: float | None = None, *, rules: RuleSet,
                    vllm_available: bool = True) -> str:
    """The engine the pods will run: the annotation when the preset supports it, else a default.

    The default follows the version the Workspace was written in. v1beta1 (KAITO v0.12) runs vLLM
    wherever the preset supports it, as v0.12 does; where this cluster cannot run vLLM (a local
    cluster without a vLLM interpreter, `vllm_available=False`) it runs the preset's transformers
    runtime instead (`compute_runtime_fallback` says why). v1alpha1 (KAITO v0.3.2, which had no vLLM)
    keeps the preset's first runtime, transformers for most. Either way a model whose weights exceed
    one node's GPU memory runs on vLLM, which spreads it over nodes, when the preset supports it.
    """
    runtimes = found.runtimes if found is not None and found.runtimes else (labels.RUNTIME_TRANSFORMERS,)
    asked = annotations.get(labels.ANNOTATION_RUNTIME)
    if asked in runtimes:
        return asked
    if _vllm_by_default(runtimes, rules) and (vllm_available or labels.RUNTIME_TRANSFORMERS not in runtimes):
        return labels.RUNTIME_VLLM
    default = runtimes[0]
    if default == labels.RUNTIME_VLLM and not vllm_available and labels.RUNTIME_TRANSFORMERS in runtimes:
        default = labels.RUNTIME_TRANSFORMERS
    weights = found.weights_gib if found is not None else None
    if (default == labels.RUNTIME_TRANSFORMERS and labels.RUNTIME_VLLM in runtimes and weights
            and node_gpu_memory_gib and weights > node_gpu_memory_gib):
        return labels.RUNTIME_VLLM
    return default


def _vllm_by_default(runtimes: tuple[str, ...], rules: RuleSet) -> bool:
    return rules is RuleSet.V1BETA1 and labels.RUNTIME_VLLM in runtimes


def compute_runtime_fallback(annotations: Mapping[str, str], found: PresetFacts | None, runtime: str, *,
                             rules: RuleSet) -> str | None:
    """Why a Workspace runs on transformers although KAITO v0.12 would run it on vLLM (None: it does not).

    Only a v1beta1 Workspace that names no runtime falls back, and only where vLLM is not installed
    (`compute_runtime` with `vllm_available=False`): the user sees it in the events and `kaito get`.
    """
    runtimes = found.runtimes if found is not None and found.runtimes else ()
    if (runtime != labels.RUNTIME_TRANSFORMERS or annotations.get(labels.ANNOTATION_RUNTIME) in runtimes
            or not _vllm_by_default(runtimes, rules)):
        return None
    return (f"vLLM is not installed for this local cluster, so this {rules.value} Workspace, which names no "
            f"runtime, runs on transformers (KAITO's default runtime is vLLM): start the control plane with "
            f"`kaito up --vllm-python PATH` to serve it with vLLM, or annotate {labels.ANNOTATION_RUNTIME}: "
            "transformers to choose transformers yourself")


def build_vllm_not_installed_message(runtime_asked: str | None) -> str:
    """The condition of a Workspace that must run on vLLM where no vLLM is installed (local cluster)."""
    why = (f"it asks for vLLM ({labels.ANNOTATION_RUNTIME}: {runtime_asked})" if runtime_asked == labels.RUNTIME_VLLM
           else "its model runs on vLLM only")
    return (f"vLLM is not installed for this local cluster and {why}: install vLLM's CPU build in a virtual "
            "environment (`./scripts/setup-vllm` makes .venv-vllm) and restart the control plane with "
            "`kaito up --vllm-python PATH` (or KAITO_VLLM_PYTHON=PATH)"
            + (f", or annotate {labels.ANNOTATION_RUNTIME}: transformers" if runtime_asked == labels.RUNTIME_VLLM
               else ""))


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
