"""KAITO v0.12's `resource` rules (kaito-v0.12.md §1.7 rules 3, 7–12): where the GPUs come from and
whether the model fits them.

With node auto-provisioning (Karpenter NodeClaims, the local cluster) `instanceType` is required and
looked up in the SKU table; with bring-your-own nodes it must be empty and the GPUs are read from
the NVIDIA labels of the nodes the selector matches (passed in `ClusterReads.nodes`: admission does
no I/O). GPU partitions (MIG slices, whole-GPU accelerator counts) exist only on BYO nodes. The
weights-versus-GPU-memory check runs where KAITO runs it: BYO nodes, or a non-vLLM runtime (vLLM
spreads the model over as many nodes as the node estimator says); `kaito.sh/bypass-resource-checks`
turns its refusals into warnings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from kaito.api import labels
from kaito.api.errors import FieldError
from kaito.api.facts import GpuFacts, ModelFacts, PresetFacts
from kaito.api.hub import PARTITION_MODES, PartitionSpec, ResourceSpec
from kaito.api.validation.context import AdmissionOptions

INSTANCE_TYPE = "resource.instanceType"
SELECTOR = "resource.labelSelector"
PARTITION = "resource.partition"
MIG_PROFILE = re.compile(r"^(\d+)g\.([\d.]+)gb$")
# NVIDIA's MIG profiles on A30, A100 (40/80 GB), H100 (80/94 GB), H200 and B200.
KNOWN_MIG_PROFILES = frozenset({
    "1g.6gb", "2g.12gb", "4g.24gb", "1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb", "1g.10gb",
    "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb", "1g.12gb", "1g.24gb", "2g.24gb", "3g.47gb",
    "4g.47gb", "7g.94gb", "3g.48gb", "4g.48gb", "7g.96gb", "1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb",
    "4g.71gb", "7g.141gb", "1g.23gb", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb",
})
MIB_PER_GIB = 1024


def validate_instance_type_create(res: ResourceSpec, options: AdmissionOptions) -> list[FieldError]:
    """Rule 3: instanceType is how auto-provisioning buys nodes, and means nothing on BYO nodes."""
    if options.auto_provisioning and not res.instance_type:
        return [FieldError(INSTANCE_TYPE, "instanceType is required: nodes are auto-provisioned, so name the "
                                          "GPU SKU to buy (or run the operator with bring-your-own nodes)")]
    if not options.auto_provisioning and res.instance_type:
        return [FieldError(INSTANCE_TYPE, f"instanceType must be empty with bring-your-own nodes (got "
                                          f"{res.instance_type!r}): the GPUs are read from the selected nodes")]
    return []


def validate_instance_type_update(new: ResourceSpec, old: ResourceSpec, options: AdmissionOptions) -> list[FieldError]:
    """Set once and never changed; on BYO nodes a value left from an older release may be cleared."""
    before, after = old.instance_type or "", new.instance_type or ""
    if options.auto_provisioning:
        if not after:
            return [FieldError(INSTANCE_TYPE, "instanceType is required: nodes are auto-provisioned")]
        if before and before != after:
            return [FieldError(INSTANCE_TYPE, f"instanceType cannot change once set (was {before!r}, now {after!r})")]
        return []
    if not before and after:
        return [FieldError(INSTANCE_TYPE, "instanceType must stay empty with bring-your-own nodes")]
    if before and after and before != after:
        return [FieldError(INSTANCE_TYPE, f"instanceType cannot change once set (was {before!r}, now {after!r}); "
                                          "with bring-your-own nodes it may only be cleared")]
    return []


def mig_slice_gib(profile: str) -> int | None:
    """The memory of one MIG slice (`1g.10gb` → 10), or None when `profile` is not a profile."""
    match = MIG_PROFILE.match(profile or "")
    return int(math.floor(float(match.group(2)))) if match else None


def validate_partition(part: PartitionSpec, options: AdmissionOptions) -> list[FieldError]:
    """Rule 7: the partition mode's feature gate and its own fields."""
    if part.mode not in PARTITION_MODES:
        return [FieldError(f"{PARTITION}.mode", f"unsupported partition mode {part.mode!r}: use mig or accelerator")]
    if part.mode == "mig":
        if not options.enable_mig:
            return [FieldError(PARTITION, "MIG partitions are off: enable the operator's enableMIG feature gate")]
        errs = []
        if part.count is not None:
            errs.append(FieldError(f"{PARTITION}.count", "count is only valid for accelerator mode"))
        if mig_slice_gib(part.profile or "") is None or part.profile not in KNOWN_MIG_PROFILES:
            errs.append(FieldError(f"{PARTITION}.profile", f"unknown MIG profile {part.profile or ''!r}: use one of "
                                                           f"{', '.join(sorted(KNOWN_MIG_PROFILES))}"))
        return errs
    if not options.enable_accelerator:
        return [FieldError(PARTITION, "accelerator partitions are off: enable the operator's enableAccelerator "
                                      "feature gate")]
    errs = []
    if part.profile:
        errs.append(FieldError(f"{PARTITION}.profile", "profile is not valid for accelerator mode"))
    if part.count is None:
        errs.append(FieldError(f"{PARTITION}.count", "count (whole GPUs per pod) is required for accelerator mode"))
    return errs


def read_node_gpus(nodes: Sequence[Mapping[str, str]]) -> tuple[GpuFacts | None, list[FieldError]]:
    """Rule 8: the one GPU shape the selected BYO nodes share, from their NVIDIA labels."""
    if not nodes:
        return None, [FieldError(SELECTOR, "no node matches the label selector: label your GPU nodes with it")]
    shape: GpuFacts | None = None
    for i, node in enumerate(nodes):
        product = node.get(labels.LABEL_GPU_PRODUCT)
        try:
            count, mib = int(node.get(labels.LABEL_GPU_COUNT, "")), int(node.get(labels.LABEL_GPU_MEMORY, ""))
        except ValueError:
            count = mib = 0
        if not product or count < 1 or mib < 1:
            return None, [FieldError(SELECTOR, f"selected node #{i + 1} has no usable NVIDIA GPU labels "
                                               f"({labels.LABEL_GPU_PRODUCT}, {labels.LABEL_GPU_COUNT}, "
                                               f"{labels.LABEL_GPU_MEMORY})")]
        # Whole GiB per GPU, as KAITO reads the labels (an 80 GB A100 reports 81920 MiB).
        this = GpuFacts(instance_type="", gpu_count=count, gpu_memory_gib=float(round(mib / MIB_PER_GIB) * count),
                        gpu_model=product)
        if shape is not None and shape != this:
            return None, [FieldError(SELECTOR, f"the selected nodes differ in GPUs ({shape.gpu_model} × "
                                               f"{shape.gpu_count} vs {this.gpu_model} × {this.gpu_count}): a "
                                               "Workspace needs one GPU shape")]
        shape = this
    return shape, []


def _fit(found: PresetFacts, gpu: GpuFacts, nodes: int, runtime: str, bypass: bool, path: str) -> list[FieldError]:
    """Rules 11 and 12: all nodes' GPU memory against the weights; one node for transformers."""
    weights = found.weights_gib
    if weights is None:
        return [FieldError(path, f"GPU memory fit not checked: the weight size of {found.name} is unknown here",
                           "warning")]
    errs = []
    total = nodes * gpu.gpu_memory_gib
    if total < weights:
        errs.append(FieldError(path, f"Insufficient total GPU memory: {nodes} × {gpu.instance_type or gpu.gpu_model} "
                                     f"has {total:g}Gi, but the weights of {found.name} need {weights:g}Gi",
                               "warning" if bypass else "error"))
    if runtime == labels.RUNTIME_TRANSFORMERS and weights > gpu.gpu_memory_gib:
        errs.append(FieldError(path, f"{found.name} needs more than one node ({weights:g}Gi of weights, "
                                     f"{gpu.gpu_memory_gib:g}Gi per node) and the transformers runtime serves "
                                     f"from one node: use {labels.ANNOTATION_RUNTIME}: vllm or a larger instance type"))
    return errs


def validate_resource_for_inference(res: ResourceSpec, found: PresetFacts | None, *, facts: ModelFacts,
                                    options: AdmissionOptions, nodes: Sequence[Mapping[str, str]] | None,
                                    runtime: str, bypass: bool) -> list[FieldError]:
    """Rules 7–12 for an inference Workspace; `found` is None for a template Workspace."""
    count = res.count if res.count is not None and res.count > 0 else 1
    if options.auto_provisioning:
        if res.partition is not None:
            return [FieldError(PARTITION, "GPU partitions need bring-your-own nodes (nodes are auto-provisioned)")]
        if not res.instance_type:
            return []  # rule 3 already said so
        errs = _call(lambda: facts.check_instance_type(res.instance_type or ""))
        gpu = _call_value(lambda: facts.instance_type(res.instance_type or ""))
        if errs or gpu is None or found is None or runtime == labels.RUNTIME_VLLM:
            return errs
        return _fit(found, gpu, count, runtime, bypass, INSTANCE_TYPE)
    if res.partition is not None:
        errs = validate_partition(res.partition, options)
        if errs or res.partition.mode != "mig" or found is None or found.weights_gib is None:
            return errs
        slice_gib = mig_slice_gib(res.partition.profile or "") or 0
        if found.weights_gib > slice_gib:
            return [FieldError(PARTITION, f"the weights of {found.name} ({found.weights_gib:g}Gi) exceed the "
                                          f"{res.partition.profile} MIG slice ({slice_gib}Gi)",
                               "warning" if bypass else "error")]
        return []
    if found is None or nodes is None:
        return []
    gpu, errs = read_node_gpus(nodes)
    if gpu is None:
        return errs
    return _fit(found, gpu, len(nodes), runtime, bypass, SELECTOR)


def _call(check) -> list[FieldError]:
    try:
        return list(check())
    except Exception as exc:  # the facts provider is outside this room; admission must still answer
        return [FieldError(INSTANCE_TYPE, f"could not check the instance type: {exc}")]


def _call_value(read) -> GpuFacts | None:
    try:
        return read()
    except Exception:
        return None
