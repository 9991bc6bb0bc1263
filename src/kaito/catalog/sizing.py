"""Sizing: does a preset fit an instance type, and how many nodes does it need.

Pure functions over `Preset` and `GPUConfig`; the webhook, the CLI and the controller all call these,
so the answers agree everywhere.

* `check_fit` is KAITO v0.3.2's admission rule 3 (reference §2.1, §4.6): GPU count, per-GPU memory
  and total memory of `count` nodes against the preset's requirements.
* `estimate_node_count` is KAITO v0.12's node estimator (§5.3): how many nodes vLLM needs for the
  weights plus its runtime reserve and the KV cache of `max_model_len` tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kaito.api.errors import FieldError
from kaito.catalog.presets import Preset, format_gib
from kaito.catalog.skus import GPUConfig

INSTANCE_TYPE_PATH = "resource.instanceType"

# Constants of KAITO v0.12's estimator (§5.3).
WEIGHT_EXPANSION = 1.02  # weights take ~2% more once loaded than on disk
BASE_RESERVE_GIB = 2.3  # CUDA context, NCCL buffers, activations, CUDA graphs
OVERHEAD_WEIGHT_FACTOR = 0.05  # runtime overhead that grows with the per-GPU weight share
DEFAULT_GPU_MEMORY_UTILIZATION = 0.84
# vLLM is launched with a lower --gpu-memory-utilization on A10s (§4.5); the estimate must use
# the same budget vLLM will have.
GPU_MEMORY_UTILIZATION_BY_MODEL = {"NVIDIA A10": 0.82}
GIB = 1024**3


def compute_gpu_memory_utilization(gpu_model: str) -> float:
    """The `--gpu-memory-utilization` KAITO runs vLLM with on this GPU model."""
    return GPU_MEMORY_UTILIZATION_BY_MODEL.get(gpu_model, DEFAULT_GPU_MEMORY_UTILIZATION)


def check_fit(preset: Preset, sku: GPUConfig, count: int) -> list[FieldError]:
    """KAITO v0.3.2 rule 3: `count` nodes of `sku` against the preset's GPU requirements.

    Per-GPU memory uses whole-GiB division of the node's memory by its GPU count, as KAITO does.
    Each shortfall is its own error, all on `resource.instanceType`.
    """
    count = max(count, 0)
    need = preset.gpu
    errors = []
    total_gpus = count * sku.gpu_count
    if total_gpus < need.count:
        errors.append(FieldError(
            INSTANCE_TYPE_PATH,
            f"Insufficient number of GPUs: {count} × instance type {sku.instance_type} provides "
            f"{total_gpus}, but preset {preset.name} requires at least {need.count}",
        ))
    per_gpu = sku.gpu_memory_gib // sku.gpu_count
    if per_gpu < need.per_gpu_memory_gib:
        errors.append(FieldError(
            INSTANCE_TYPE_PATH,
            f"Insufficient per GPU memory: instance type {sku.instance_type} provides "
            f"{format_gib(per_gpu)} per GPU, but preset {preset.name} requires at least "
            f"{format_gib(need.per_gpu_memory_gib)} per GPU",
        ))
    total_mem = count * sku.gpu_memory_gib
    if total_mem < need.total_memory_gib:
        errors.append(FieldError(
            INSTANCE_TYPE_PATH,
            f"Insufficient total GPU memory: {count} × instance type {sku.instance_type} has a total of "
            f"{format_gib(total_mem)}, but preset {preset.name} requires at least "
            f"{format_gib(need.total_memory_gib)}",
        ))
    return errors


@dataclass(frozen=True)
class NodeEstimate:
    """The estimator's answer: `nodes` on success, else `error` (a sentence for a condition)."""

    nodes: int | None
    error: str | None = None
    min_gpus: int | None = None  # GPUs the weights need, before rounding up to whole nodes

    @property
    def ok(self) -> bool:
        return self.error is None


def estimate_node_count(
    preset: Preset | None,
    gpu: GPUConfig | None,
    max_model_len: int = 2048,
    requested: int = 1,
) -> NodeEstimate:
    """KAITO v0.12's node estimator (§5.3), with its errors returned as values.

    No preset (a template workspace) or no GPU facts: the requested count stands. Multi-node is
    allowed for presets that KAITO serves across nodes: torchrun-distributed ones, and any preset the
    vLLM runtime serves (Ray pipeline parallelism across nodes, as v0.12 does for all its models).
    """
    requested = max(requested, 1)
    if preset is None or gpu is None or gpu.gpu_count < 1 or gpu.gpu_memory_gib <= 0:
        return NodeEstimate(nodes=requested)
    model_size = preset.model_size_gib * GIB * WEIGHT_EXPANSION
    per_gpu = gpu.gpu_memory_gib * GIB / gpu.gpu_count
    avail = per_gpu * compute_gpu_memory_utilization(gpu.gpu_model)
    kv_cache = max_model_len * (preset.model.bytes_per_token or 0) / gpu.gpu_count
    fixed_reserve = BASE_RESERVE_GIB * GIB + kv_cache
    if avail <= fixed_reserve:
        return NodeEstimate(nodes=None, error=(
            f"GPU memory of {gpu.instance_type or gpu.gpu_model} ({per_gpu / GIB:.1f} GiB per GPU) is too "
            f"small: it needs at least {fixed_reserve / GIB:.1f} GiB of overhead (base {BASE_RESERVE_GIB} GiB"
            f" + KV cache {kv_cache / GIB:.1f} GiB for {max_model_len} tokens) before any weights"
        ))
    avail_for_weights = (avail - fixed_reserve) / (1 + OVERHEAD_WEIGHT_FACTOR)
    min_gpus = math.floor(model_size / avail_for_weights) + 1
    nodes = math.ceil(min_gpus / gpu.gpu_count)
    if gpu.mig and nodes > 1:
        return NodeEstimate(nodes=None, min_gpus=min_gpus, error=(
            f"preset {preset.name} needs {model_size / GIB:.1f} GiB of weights plus overhead, more than one "
            f"MIG slice of {per_gpu / GIB:.0f} GiB provides"
        ))
    if nodes > 1 and not (preset.distributed or "vllm" in preset.runtimes):
        return NodeEstimate(nodes=None, min_gpus=min_gpus, error=(
            f"preset {preset.name} cannot be distributed across nodes, but needs {nodes} nodes of "
            f"{gpu.instance_type or gpu.gpu_model}; use an instance type with more GPU memory"
        ))
    return NodeEstimate(nodes=nodes, min_gpus=min_gpus)


def gpus_to_request(sku: GPUConfig | None, preset: Preset | None = None) -> int:
    """`nvidia.com/gpu` a pod requests: every GPU of its node (KAITO v0.3.2 `GetSKUNumGPUs`).

    Unknown SKU: the caller may pass a config read from the node instead; failing that, the preset's
    GPU count, else 1.
    """
    if sku is not None and sku.gpu_count > 0:
        return sku.gpu_count
    if preset is not None:
        return preset.gpu.count
    return 1
