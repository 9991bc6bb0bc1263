"""GPU instance types: what a node of a given SKU offers (GPU model, count, memory, capability).

KAITO keeps several SKU tables that disagree in places (reference §4.4, §4.5, §10.2); they are
copied verbatim into `skus.yaml` and merged here into one view per cloud:

* `lookup_sku(sku, cloud)` is what provisioning and GPU-request counts use: the v0.12 row when there
  is one (it carries compute capability and NVMe), else the v0.3.2 handler row, else (Azure) the
  v0.3.2 admission row. Compute capability of rows v0.12 dropped comes from the GPU model.
* `validation_sku(sku, cloud)` is what admission fit checks use. KAITO v0.3.2 checked against the
  Azure-only admission table, so on AWS every SKU was "unsupported" unless it happened to start
  with `Standard_N`/`Standard_D` (§10.2): an AWS user could never use `p4d.24xlarge`. We check
  each cloud against its own merged table instead. On Azure the v0.3.2 admission numbers win any
  disagreement, so v0.3.2's accept/reject answers are kept (e.g. ND96amsr_A100_v4 is 640 GiB, not
  the 80 GiB typo of the v0.3.2 handler).
* `gpu_config_from_node_labels` reads GPU Feature Discovery labels for nodes of unknown SKUs
  (bring-your-own nodes, the local cluster).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Literal

import yaml

Cloud = Literal["azure", "aws", "arc"]
CLOUDS: tuple[str, ...] = ("azure", "aws", "arc")

# GPU Feature Discovery node labels (reference §4.5).
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"
LABEL_GPU_COUNT = "nvidia.com/gpu.count"
LABEL_GPU_MEMORY = "nvidia.com/gpu.memory"  # MiB per GPU
LABEL_CUDA_MAJOR = "nvidia.com/cuda.compute.major"
LABEL_CUDA_MINOR = "nvidia.com/cuda.compute.minor"
LABEL_MIG_CONFIG = "nvidia.com/mig.config"
LABEL_MIG_STATE = "nvidia.com/mig.config.state"
LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"


@dataclass(frozen=True)
class GPUConfig:
    """One node's GPUs. `gpu_memory_gib` is the node total, as in KAITO's tables."""

    instance_type: str
    gpu_count: int
    gpu_memory_gib: float
    gpu_model: str = ""
    compute_capability: float | None = None  # None: unknown, or not a CUDA device
    nvme: bool = False
    mig: bool = False

    @property
    def per_gpu_memory_gib(self) -> float:
        return self.gpu_memory_gib / self.gpu_count if self.gpu_count else 0.0

    @property
    def supports_bf16(self) -> bool:
        """bfloat16 needs Ampere or newer (compute capability ≥ 8.0), as KAITO v0.12 decides."""
        return self.compute_capability is not None and self.compute_capability >= 8.0


@dataclass(frozen=True)
class SkuTables:
    merged: Mapping[str, Mapping[str, GPUConfig]]  # cloud → lower-case SKU → config
    validation: Mapping[str, Mapping[str, GPUConfig]]
    validation_names: Mapping[str, tuple[str, ...]]  # cloud → SKUs listed in "Supported SKUs: …"


def _rows(doc: dict, key: str, width: int) -> list[list]:
    rows = doc.get(key)
    if not isinstance(rows, list):
        raise ValueError(f"skus.yaml: '{key}' must be a list")
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise ValueError(f"skus.yaml: {key}: row {row!r} must have {width} fields")
        if not isinstance(row[1], int) or row[1] < 1 or not isinstance(row[2], int | float) or row[2] <= 0:
            raise ValueError(f"skus.yaml: {key}: {row[0]}: GPU count and memory must be positive numbers")
    return rows


def build_sku_tables(doc: dict) -> SkuTables:
    """Merge the raw KAITO tables of `skus.yaml` into per-cloud lookups (pure)."""
    cc: dict[str, float] = doc.get("compute_capability", {})
    extra_models: dict[str, str] = doc.get("azure_validation_models", {})

    def v032(key: str) -> dict[str, GPUConfig]:
        return {r[0]: GPUConfig(r[0], r[1], r[2], r[3], cc.get(r[3])) for r in _rows(doc, key, 4)}

    def v012(key: str) -> dict[str, GPUConfig]:
        return {r[0]: GPUConfig(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in _rows(doc, key, 6)}

    admission = {
        r[0]: GPUConfig(r[0], r[1], r[2], extra_models.get(r[0], ""), cc.get(extra_models.get(r[0], "")))
        for r in _rows(doc, "azure_validation_v032", 3)
    }
    azure = {**admission, **v032("azure_v032"), **v012("azure_v012")}
    for name, adm in admission.items():  # v0.3.2 admission numbers win (see module docstring)
        azure[name] = replace(azure[name], gpu_count=adm.gpu_count, gpu_memory_gib=adm.gpu_memory_gib,
                              gpu_model=azure[name].gpu_model or adm.gpu_model)
    aws = {**v032("aws_v032"), **v012("aws_v012")}
    arc = v012("arc_v012")

    def lower(table: dict[str, GPUConfig]) -> dict[str, GPUConfig]:
        return {k.lower(): v for k, v in table.items()}

    merged = {"azure": lower(azure), "aws": lower(aws), "arc": lower(arc)}
    return SkuTables(
        merged=merged,
        validation=merged,
        validation_names={"azure": tuple(azure), "aws": tuple(aws), "arc": tuple(arc)},
    )


@functools.cache
def load_sku_tables() -> SkuTables:
    text = resources.files("kaito.catalog").joinpath("skus.yaml").read_text(encoding="utf-8")
    return build_sku_tables(yaml.safe_load(text))


def _check_cloud(cloud: str) -> str:
    if cloud not in CLOUDS:
        raise ValueError(f"unknown cloud {cloud!r}; expected one of {', '.join(CLOUDS)}")
    return cloud


def lookup_sku(instance_type: str, cloud: str = "azure") -> GPUConfig | None:
    """The GPUs of an instance type on a cloud (case-insensitive); None when unknown."""
    return load_sku_tables().merged[_check_cloud(cloud)].get(instance_type.lower())


def validation_sku(instance_type: str, cloud: str = "azure") -> GPUConfig | None:
    """The row admission fit checks use for this instance type; None when unknown."""
    return load_sku_tables().validation[_check_cloud(cloud)].get(instance_type.lower())


def supported_skus(cloud: str = "azure") -> tuple[str, ...]:
    return load_sku_tables().validation_names[_check_cloud(cloud)]


def accepts_unknown_sku(instance_type: str, cloud: str = "azure") -> bool:
    """KAITO rule 4: an unlisted Azure SKU is still accepted if it is an N- or D-series VM."""
    return cloud == "azure" and instance_type.startswith(("Standard_N", "Standard_D"))


def gpu_config_from_node_labels(labels: Mapping[str, str]) -> GPUConfig | None:
    """GPU facts from GPU Feature Discovery labels; None unless product, count and memory are valid.

    `nvidia.com/gpu.memory` is MiB per GPU; like KAITO v0.12 we round it to whole GiB per GPU and
    multiply by the count, so a node reads the same as a table row (an 80 GB A100 reports 81920).
    """
    product = labels.get(LABEL_GPU_PRODUCT, "").strip()
    try:
        count = int(labels.get(LABEL_GPU_COUNT, ""))
        mib = int(labels.get(LABEL_GPU_MEMORY, ""))
    except ValueError:
        return None
    if not product or count < 1 or mib < 1:
        return None
    cc = None
    try:
        cc = float(f"{int(labels[LABEL_CUDA_MAJOR])}.{int(labels[LABEL_CUDA_MINOR])}")
    except (KeyError, ValueError):
        pass
    mig = labels.get(LABEL_MIG_CONFIG, "all-disabled") != "all-disabled" and labels.get(LABEL_MIG_STATE) == "success"
    return GPUConfig(
        instance_type=labels.get(LABEL_INSTANCE_TYPE, ""),
        gpu_count=count,
        gpu_memory_gib=float(round(mib / 1024) * count),
        gpu_model=product,
        compute_capability=cc,
        mig=mig,
    )
