"""SKU tables (reference §4.4, §4.5) and GPU facts from node labels."""

from __future__ import annotations

import pytest

from kaito.catalog import skus
from kaito.catalog.skus import gpu_config_from_node_labels, lookup_sku, validation_sku


def test_table_sizes_match_kaito():
    tables = skus.load_sku_tables()
    # v0.3.2 admission 38 + handler-only names (ND96asr_A100_v4, NG32ads/adms_V620, NV32as_v4) + v0.12-only
    # (NC40ads/NC80adis/ND96isr/NCC40ads H100, ND96isr_H200) = 47
    assert len(tables.merged["azure"]) == 47
    assert len(tables.merged["aws"]) == 57 + 2  # v0.3.2 handler + p5e/p5en from v0.12
    assert len(tables.merged["arc"]) == 8
    assert len(skus.supported_skus("azure")) == 47


@pytest.mark.parametrize("sku,cloud,gpus,gib,model,cc,nvme", [
    ("Standard_NC12s_v3", "azure", 2, 32, "NVIDIA V100", 7.0, False),
    ("Standard_NC24ads_A100_v4", "azure", 1, 80, "NVIDIA A100", 8.0, True),
    ("Standard_NC96ads_A100_v4", "azure", 4, 320, "NVIDIA A100", 8.0, True),
    ("Standard_ND96amsr_A100_v4", "azure", 8, 640, "NVIDIA A100", 8.0, True),  # not the 80 of pkg/sku
    ("Standard_NC6", "azure", 1, 12, "NVIDIA K80", 3.7, False),  # admission-table only
    ("Standard_ND96isr_H200_v5", "azure", 8, 1128, "NVIDIA H200", 9.0, True),  # v0.12 only
    ("Standard_NV36ads_A10_v5", "azure", 1, 24, "NVIDIA A10", 8.6, False),
    ("Standard_NG32ads_V620_v1", "azure", 1, 32, "AMD Radeon PRO V620", None, False),
    ("p4d.24xlarge", "aws", 8, 320, "NVIDIA A100", 8.0, True),
    ("p5en.48xlarge", "aws", 8, 1128, "NVIDIA H200", 9.0, True),
    ("g5.12xlarge", "aws", 4, 96, "NVIDIA A10G", 8.6, True),
    ("p3.2xlarge", "aws", 1, 16, "NVIDIA V100", 7.0, False),  # dropped by v0.12, kept from v0.3.2
    ("inf2.48xlarge", "aws", 12, 384, "AWS Inferentia2 accelerators", None, False),
    ("Standard_NC16_A16", "arc", 2, 32, "NVIDIA A16", 8.6, False),
])
def test_lookup(sku, cloud, gpus, gib, model, cc, nvme):
    cfg = lookup_sku(sku, cloud)
    assert (cfg.instance_type, cfg.gpu_count, cfg.gpu_memory_gib, cfg.gpu_model) == (sku, gpus, gib, model)
    assert (cfg.compute_capability, cfg.nvme) == (cc, nvme)


def test_lookup_is_case_insensitive_and_cloud_scoped():
    assert lookup_sku("standard_nc12s_v3").gpu_count == 2
    assert lookup_sku("p4d.24xlarge", "azure") is None
    assert lookup_sku("Standard_NC12s_v3", "aws") is None
    assert lookup_sku("Standard_Nope") is None
    with pytest.raises(ValueError, match="unknown cloud"):
        lookup_sku("p4d.24xlarge", "gcp")


def test_validation_uses_each_clouds_table():
    assert validation_sku("Standard_ND96asr_v4").gpu_memory_gib == 320
    assert validation_sku("g6.12xlarge", "aws").gpu_count == 4
    assert skus.accepts_unknown_sku("Standard_NC999_v9") and skus.accepts_unknown_sku("Standard_D4s_v5")
    assert not skus.accepts_unknown_sku("Standard_E4s_v5")
    assert not skus.accepts_unknown_sku("Standard_NC999_v9", "aws")


def test_derived_properties():
    a100 = lookup_sku("Standard_NC96ads_A100_v4")
    assert a100.per_gpu_memory_gib == 80 and a100.supports_bf16
    assert not lookup_sku("Standard_NC12s_v3").supports_bf16


GFD = {
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.memory": "81920",
    "nvidia.com/cuda.compute.major": "8",
    "nvidia.com/cuda.compute.minor": "0",
    "node.kubernetes.io/instance-type": "my-byo-node",
}


def test_node_labels():
    cfg = gpu_config_from_node_labels(GFD)
    assert (cfg.instance_type, cfg.gpu_count, cfg.gpu_memory_gib, cfg.per_gpu_memory_gib) == (
        "my-byo-node", 8, 640, 80)
    assert cfg.gpu_model == "NVIDIA-A100-SXM4-80GB" and cfg.compute_capability == 8.0 and not cfg.mig


def test_node_labels_round_mib_per_gpu():
    # An H100 NVL reports 95830 MiB → 93.58 GiB → 94 GiB per GPU.
    cfg = gpu_config_from_node_labels({**GFD, "nvidia.com/gpu.count": "2", "nvidia.com/gpu.memory": "95830"})
    assert cfg.gpu_memory_gib == 188


def test_node_labels_mig():
    labels = {**GFD, "nvidia.com/mig.config": "all-1g.10gb", "nvidia.com/mig.config.state": "success"}
    assert gpu_config_from_node_labels(labels).mig
    assert not gpu_config_from_node_labels({**labels, "nvidia.com/mig.config.state": "pending"}).mig


@pytest.mark.parametrize("drop_or_bad", [
    {"nvidia.com/gpu.product": ""}, {"nvidia.com/gpu.count": "eight"}, {"nvidia.com/gpu.count": "0"},
    {"nvidia.com/gpu.memory": ""}, {"nvidia.com/gpu.memory": "-1"},
])
def test_node_labels_incomplete(drop_or_bad):
    assert gpu_config_from_node_labels({**GFD, **drop_or_bad}) is None
    assert gpu_config_from_node_labels({}) is None


def test_node_labels_without_compute_capability():
    labels = {k: v for k, v in GFD.items() if "cuda" not in k}
    assert gpu_config_from_node_labels(labels).compute_capability is None


@pytest.mark.parametrize("doc,words", [
    ({"azure_validation_v032": [["Standard_X", 0, 8]]}, ["Standard_X", "positive"]),
    ({"azure_validation_v032": [["Standard_X", 1]]}, ["3 fields"]),
    ({"azure_validation_v032": "nope"}, ["must be a list"]),
])
def test_broken_sku_data(doc, words):
    with pytest.raises(ValueError) as err:
        skus.build_sku_tables(doc)
    assert all(w in str(err.value) for w in words)
