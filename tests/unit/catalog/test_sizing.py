"""Sizing: KAITO v0.3.2's fit check (§2.1 rule 3, §4.6) and v0.12's node estimator (§5.3), cases by hand."""

from __future__ import annotations

import pytest

from kaito.catalog.presets import GPURequirement, get_preset
from kaito.catalog.sizing import (
    check_fit,
    compute_gpu_memory_utilization,
    estimate_node_count,
    gpus_to_request,
)
from kaito.catalog.skus import GPUConfig, lookup_sku, validation_sku


def test_falcon_40b_fits_nc96ads_a100_not_nc12s_v3():
    falcon = get_preset("falcon-40b")
    assert check_fit(falcon, validation_sku("Standard_NC96ads_A100_v4"), 1) == []
    errors = check_fit(falcon, validation_sku("Standard_NC12s_v3"), 1)
    assert [e.path for e in errors] == ["resource.instanceType"]
    assert "Insufficient total GPU memory" in errors[0].message and "90Gi" in errors[0].message
    assert "32Gi" in errors[0].message
    # Three NC12s_v3 nodes give 96 GiB: enough.
    assert check_fit(falcon, validation_sku("Standard_NC12s_v3"), 3) == []


def _test_preset(count, per_gpu, total):
    """KAITO's unit tests register a `test-validation` model with requirements set per case."""
    base = get_preset("falcon-7b")
    return base.model_copy(update={"name": "test-validation", "gpu": GPURequirement(
        count=count, per_gpu_memory_gib=per_gpu, total_memory_gib=total)})


# The rule-3 cases of KAITO v0.3.2's TestResourceSpecValidateCreate (reference §2.2).
@pytest.mark.parametrize("sku,count,need,problems", [
    ("Standard_ND96asr_v4", 1, (8, 19, 152), []),
    ("Standard_NC12s_v3", 1, (1, 16, 16), []),  # exactly the requirement
    ("Standard_NC6", 1, (1, 0, 14), ["Insufficient total GPU memory"]),
    ("Standard_NC24ads_A100_v4", 1, (2, 0, 0), ["Insufficient number of GPUs"]),
    ("Standard_NC6", 2, (1, 15, 0), ["Insufficient per GPU memory"]),
    ("Standard_NC6", 1, (2, 15, 20), ["Insufficient number of GPUs", "Insufficient per GPU memory",
                                      "Insufficient total GPU memory"]),
])
def test_v032_fit_table(sku, count, need, problems):
    errors = check_fit(_test_preset(*need), validation_sku(sku), count)
    assert [e.message.split(":")[0] for e in errors] == problems
    assert all(e.path == "resource.instanceType" and e.severity == "error" for e in errors)
    assert all(sku in e.message and "test-validation" in e.message for e in errors)


def test_per_gpu_memory_uses_whole_gib_division():
    # Standard_NV72ads_A10_v5: 2 GPUs, 48 GiB → 24 per GPU; a node of 3 GPUs / 50 GiB gives 16 (not 16.7).
    odd = GPUConfig("odd", 3, 50)
    assert check_fit(_test_preset(1, 16, 0), odd, 1) == []
    assert "16Gi per GPU" in check_fit(_test_preset(1, 17, 0), odd, 1)[0].message


def test_llama_2_70b_needs_eight_gpus_of_19gi():
    llama = get_preset("llama-2-70b")
    assert check_fit(llama, validation_sku("Standard_ND96asr_v4"), 1) == []
    msgs = [e.message for e in check_fit(llama, validation_sku("Standard_NC24ads_A100_v4"), 1)]
    assert len(msgs) == 2 and "number of GPUs" in msgs[0] and "total GPU memory" in msgs[1]


# Estimator cases, worked by hand from §5.3:
#   model = weights × 1.02; avail = GiB per GPU × util; reserve = 2.3 + len × BytesPerToken / GPUs
#   minGPUs = floor(model / ((avail − reserve) / 1.05)) + 1; nodes = ceil(minGPUs / GPUs per node)
def test_estimate_phi4_on_one_a100():
    # 27.8562 / ((67.2 − 2.6906) / 1.05 = 61.44) → 0 + 1 GPU → 1 node
    est = estimate_node_count(get_preset("phi-4"), lookup_sku("Standard_NC24ads_A100_v4"))
    assert (est.nodes, est.min_gpus, est.error) == (1, 1, None) and est.ok


def test_estimate_phi4_on_a10_needs_two_nodes():
    # A10 runs vLLM at 0.82: avail 19.68; reserve 2.6906; (19.68 − 2.6906) / 1.05 = 16.18; 27.86 / 16.18 = 1.72 → 2
    assert compute_gpu_memory_utilization("NVIDIA A10") == 0.82
    est = estimate_node_count(get_preset("phi-4"), lookup_sku("Standard_NV36ads_A10_v5"))
    assert (est.nodes, est.min_gpus) == (2, 2)


def test_estimate_llama_2_70b_on_a10():
    # 128.52 × 1.02 = 131.09; reserve 2.3 + 2048 × 327680 B = 2.925; (19.68 − 2.925) / 1.05 = 15.957 → 8.2 → 9
    est = estimate_node_count(get_preset("llama-2-70b"), lookup_sku("Standard_NV36ads_A10_v5"))
    assert (est.nodes, est.min_gpus) == (9, 9)


def test_estimate_packs_gpus_into_nodes():
    # llama-2-70b on 4×80 GiB: avail 67.2, reserve 2.3 + 0.625/4; (67.2 − 2.456) / 1.05 = 61.66 → 2.13 → 3 GPUs → 1 node
    est = estimate_node_count(get_preset("llama-2-70b"), lookup_sku("Standard_NC96ads_A100_v4"))
    assert (est.nodes, est.min_gpus) == (1, 3)


def test_estimate_longer_context_needs_more_memory():
    phi = get_preset("phi-3-mini-128k-instruct")
    a100 = lookup_sku("Standard_NC24ads_A100_v4")
    assert estimate_node_count(phi, a100).nodes == 1
    # 131072 tokens × 393216 B = 48 GiB of KV cache: 67.2 − 50.3 leaves 16.1 GiB, still room for 7.26 GiB.
    assert estimate_node_count(phi, a100, max_model_len=131072).nodes == 1


def test_estimate_gpu_too_small_is_an_error_value():
    phi = get_preset("phi-3-mini-128k-instruct")
    est = estimate_node_count(phi, lookup_sku("Standard_NV6ads_A10_v5"), max_model_len=131072)
    assert est.nodes is None and not est.ok
    assert "too small" in est.error and "Standard_NV6ads_A10_v5" in est.error


def test_estimate_not_distributable_is_an_error_value():
    phi4_tf_only = get_preset("phi-4").model_copy(update={"runtimes": ("transformers",)})
    est = estimate_node_count(phi4_tf_only, lookup_sku("Standard_NV36ads_A10_v5"))
    assert est.nodes is None and "cannot be distributed" in est.error and "2 nodes" in est.error


def test_estimate_mig_slice_too_small():
    slice_ = GPUConfig("", 1, 10, "NVIDIA A100 MIG 1g.10gb", 8.0, mig=True)
    est = estimate_node_count(get_preset("phi-4"), slice_)
    assert est.nodes is None and "MIG" in est.error
    assert estimate_node_count(get_preset("qwen2.5-0.5b-instruct"), slice_).nodes == 1


def test_estimate_without_preset_or_gpu_facts_keeps_the_request():
    assert estimate_node_count(None, lookup_sku("Standard_NC24ads_A100_v4"), requested=3).nodes == 3
    assert estimate_node_count(get_preset("phi-4"), None).nodes == 1
    assert estimate_node_count(None, None, requested=0).nodes == 1


def test_gpus_to_request():
    assert gpus_to_request(lookup_sku("Standard_NC96ads_A100_v4")) == 4
    assert gpus_to_request(None, get_preset("llama-2-13b")) == 2
    assert gpus_to_request(None) == 1
