"""A Workspace whose runtime is vLLM, turned into the resolved inputs of KAITO v0.12's vLLM objects.

`manifests.vllm` builds the StatefulSet, the pod-0 Service and the headless Service from a frozen
`VllmInputs` that names no Workspace; this module is the one place a hub Workspace (either served
version, or an InferenceSet's child) becomes those inputs, so `kaito render` and the controller's
plan build the same objects: the owner and placement labels, the `inference.config` ConfigMap,
`HF_TOKEN` from the model-access Secret, adapters (served as LoRA modules), the LoadBalancer and
performance-mode annotations, and an InferenceSet child's set label and served name.

The node count is KAITO v0.12's `status.targetNodeCount`: its node estimator for the preset on the
SKU's GPUs, for a context of `vllm.max-model-len` (2048 unless `inference.config` says otherwise);
when the estimate cannot be made, the count asked for stands.
"""

from __future__ import annotations

from collections.abc import Sequence

from kaito.api import conversion, labels
from kaito.api.hub import Workspace
from kaito.catalog import sizing
from kaito.catalog.presets import Preset
from kaito.catalog.skus import GPUConfig
from kaito.manifests import images, ownership, service, vllm

DEFAULT_MAX_MODEL_LEN = 2048  # KAITO v0.12's sizing context when inference.config sets none


def serves_vllm_objects(preset: Preset, engine: str | None, api_version: str | None) -> bool:
    """KAITO v0.12's vLLM objects are for a v1beta1 Workspace (`api_version`: the version it was
    written in; None counts as v1beta1, the storage version) on the vLLM runtime, of a preset whose
    weights come from the Hub (a private llama-2 image runs KAITO's own torchrun command instead).
    A v1alpha1 Workspace keeps KAITO v0.3.2's objects, on the vLLM engine when it asked for it."""
    return (engine == labels.RUNTIME_VLLM and preset.hf is not None
            and api_version in (None, conversion.STORAGE_VERSION))


def compute_node_count(preset: Preset | None, gpu: GPUConfig | None, requested: int,
                       max_model_len: int = DEFAULT_MAX_MODEL_LEN) -> int:
    """`status.targetNodeCount` for a vLLM Workspace: the estimator's answer, else `requested`."""
    requested = max(requested, 1)
    estimate = sizing.estimate_node_count(preset, gpu, max_model_len, requested)
    return estimate.nodes if estimate.ok and estimate.nodes else requested


def build_vllm_inputs(ws: Workspace, preset: Preset, *, gpu: GPUConfig | None, node_count: int,
                      revision: int | str | None, image_settings: images.ImageSettings,
                      node_names: Sequence[str] = ()) -> vllm.VllmInputs:
    """The inputs of `vllm.build_vllm_objects` for `ws` (defaulted) on `node_count` nodes."""
    inference = ws.inference
    spec = inference.preset if inference is not None else None
    options = spec.preset_options if spec is not None else None
    set_name = ownership.inferenceset_name(ws)
    return vllm.VllmInputs(
        owner=ownership.owner_of(ws),
        preset=preset,
        image=images.build_runtime_image(image_settings, preset),
        gpu=gpu,
        node_count=max(node_count, 1),
        revision=revision,
        served_model_name=set_name,  # None: KAITO's name, the repo id's last part in lower case
        config_map=(inference.config or None) if inference is not None else None,
        model_access_secret=(options.model_access_secret or None) if options is not None else None,
        adapters=tuple((inference.adapters or ()) if inference is not None else ()),
        match_labels=ownership.placement_labels(ws),
        node_names=tuple(node_names),
        load_balancer=service.wants_load_balancer(ws),
        performance_mode=ws.annotations.get(labels.ANNOTATION_PERFORMANCE_MODE),
        pod_labels=ownership.build_set_labels(ws),
    )
