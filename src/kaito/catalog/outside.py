"""Presets for models the catalog does not list: any Hugging Face `org/model` id or a local directory.

Admission already accepts such names (`CatalogFacts.preset`); the controller and `kaito render` need a
`Preset` to build pods from, so this module makes a generic one: weights from that id or directory,
one GPU, our runtime with the transformers engine (vLLM too), and LoRA/QLoRA tuning with our generic
trainer. Sizes are unknown here (the admission fit check warns about that), so the disk request is
the catalog's smallest and the GPU memory numbers are zero (no constraint).
"""

from __future__ import annotations

from kaito.catalog import hub_cache, presets

_GENERIC_DISK = "50Gi"


def build_outside_preset(name: str) -> presets.Preset | None:
    """A generic preset for an `org/model` id or a local model directory; None for anything else."""
    if not (hub_cache.looks_like_hub_id(name) or hub_cache.looks_like_local_dir(name)):
        return None
    gpu = presets.GPURequirement(count=1, total_memory_gib=0, per_gpu_memory_gib=0)
    preset = presets.Preset(
        name="outside-model",  # replaced below: the user's name is the served model name
        family="outside",
        origin="kaito-python",
        hf=presets.HubSource(repo=name),
        parameters_b=1,
        dtype="auto",
        access="public",
        disk=_GENERIC_DISK,
        gpu=gpu,
        distributed=False,
        runtimes=("transformers", "vllm"),
        inference=presets.InferenceLaunch(readiness_timeout_s=1800, base_command=""),
        tuning=presets.TuningSupport(
            disk=_GENERIC_DISK,
            gpu=gpu,
            base_command="",
            methods={"lora": presets.MethodSupport(per_gpu_memory_gib=1),
                     "qlora": presets.MethodSupport(per_gpu_memory_gib=1)},
        ),
        model=presets.ModelShape(),
        notes="generic preset for a model outside the catalog",
    )
    # The name validator wants catalog-style names; an outside model keeps the name the user wrote.
    return preset.model_copy(update={"name": name})


def resolve_preset(name: str) -> presets.Preset | None:
    """The catalog preset of that name or alias, else a generic one for an id or directory."""
    return presets.get_preset(name) or build_outside_preset(name)
