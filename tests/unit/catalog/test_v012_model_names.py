"""KAITO v0.12's model names resolve here with their sizes: the legacy names (kaito.md §5.2), the
Hugging Face ids of its model catalog (§5.4), and the estimator and fit checks work for them."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kaito.api.admission import admit
from kaito.catalog import presets, sizing, skus
from kaito.catalog.facts import build_catalog_facts
from kaito.cli.main import app

# KAITO v0.12 LegacyBuiltinToCatalog: name → Hugging Face id (§5.2).
LEGACY = {
    "phi-4": "microsoft/phi-4", "phi-4-mini-instruct": "microsoft/phi-4-mini-instruct",
    "llama-3.1-8b-instruct": "meta-llama/llama-3.1-8b-instruct",
    "llama-3.3-70b-instruct": "meta-llama/llama-3.3-70b-instruct",
    "deepseek-r1-distill-llama-8b": "deepseek-ai/deepseek-r1-distill-llama-8b",
    "deepseek-r1-distill-qwen-14b": "deepseek-ai/deepseek-r1-distill-qwen-14b",
    "deepseek-r1-0528": "deepseek-ai/deepseek-r1-0528", "deepseek-v3-0324": "deepseek-ai/deepseek-v3-0324",
    "phi-3-mini-4k-instruct": "microsoft/phi-3-mini-4k-instruct",
    "phi-3-mini-128k-instruct": "microsoft/phi-3-mini-128k-instruct",
    "phi-3-medium-4k-instruct": "microsoft/phi-3-medium-4k-instruct",
    "phi-3-medium-128k-instruct": "microsoft/phi-3-medium-128k-instruct",
    "phi-3.5-mini-instruct": "microsoft/phi-3.5-mini-instruct",
    "qwen2.5-coder-7b-instruct": "qwen/qwen2.5-coder-7b-instruct",
    "qwen2.5-coder-32b-instruct": "qwen/qwen2.5-coder-32b-instruct",
    "gpt-oss-20b": "openai/gpt-oss-20b", "gpt-oss-120b": "openai/gpt-oss-120b",
    "gemma-3-4b-instruct": "google/gemma-3-4b-it", "gemma-3-27b-instruct": "google/gemma-3-27b-it",
    "mistral-7b": "mistralai/mistral-7b-v0.3", "mistral-7b-instruct": "mistralai/mistral-7b-instruct-v0.3",
    "ministral-3-3b-instruct": "mistralai/ministral-3-3b-instruct-2512",
    "ministral-3-8b-instruct": "mistralai/ministral-3-8b-instruct-2512",
    "ministral-3-14b-instruct": "mistralai/ministral-3-14b-instruct-2512",
    "mistral-large-3-675b-instruct": "mistralai/mistral-large-3-675b-instruct-2512",
}
# §5.4: Hugging Face id → (weights GiB, context tokens), a sample across families and quantizations.
CATALOG = {
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": (27.51, 131072),
    "openai/gpt-oss-20b": (25.63, 131072),
    "openai/gpt-oss-120b": (121.54, 131072),
    "meta-llama/Llama-3.3-70B-Instruct": (131.42, 131072),
    "mistralai/Ministral-3-8B-Instruct-2512": (9.70, 262144),
    "google/gemma-3-4b-it": (8.01, 131072),
    "google/gemma-3-27b-it": (51.10, 131072),
    "deepseek-ai/DeepSeek-R1-0528": (641.30, 163840),
    "mistralai/Mistral-Large-3-675B-Instruct-2512": (634.70, 294912),
    "Qwen/Qwen3-8B-AWQ": (5.68, 40960),
    "nvidia/NVIDIA-Nemotron-Nano-9B-v2": (16.56, 131072),
    "google/gemma-4-31B-it": (58.25, 262144),
    "moonshotai/Kimi-K2.5": (554.32, 262144),
    "zai-org/GLM-5.2-FP8": (703.75, 1048576),
    "ibm-granite/granite-4.1-8b": (16.38, 131072),
}
ALL_CATALOG_IDS = 60


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_legacy_names_resolve_to_kaitos_model(name):
    p = presets.get_preset(name)
    assert p is not None and p.hf_id.lower() == LEGACY[name]
    assert presets.get_preset(LEGACY[name]) is not None  # the Hugging Face id resolves too
    assert p.model.weights_gib and p.model.token_limit


@pytest.mark.parametrize("hf_id", sorted(CATALOG))
def test_catalog_ids_resolve_with_kaitos_sizes(hf_id):
    weights, tokens = CATALOG[hf_id]
    p = presets.get_preset(hf_id)
    assert p is not None, hf_id
    assert (p.model.weights_gib, p.model.token_limit) == (weights, tokens)
    assert p.model.bytes_per_token and "vllm" in p.runtimes


def test_every_catalog_model_of_kaito_v012_is_a_preset():
    """KAITO v0.12's 60 catalog ids: the v0.12 presets here plus the four Phi-3 presets of v0.3.2."""
    ids = {p.hf_id.lower() for p in presets.all_presets()
           if p.hf_id and (p.origin == "v0.12" or p.name.startswith("phi-3-"))}
    assert len(ids) == ALL_CATALOG_IDS
    assert {h.lower() for h in CATALOG} <= ids


def test_latent_attention_kv_cache_per_token():
    # DeepSeek-R1: (kv_lora_rank 512 + rope 64) × 61 layers × 2 bytes, not 2 × layers × heads × dim.
    assert presets.get_preset("deepseek-r1-0528").model.bytes_per_token == (512 + 64) * 61 * 2


@pytest.mark.parametrize(("name", "sku", "nodes"), [
    ("gpt-oss-20b", "Standard_NV36ads_A10_v5", 2),
    ("gpt-oss-120b", "Standard_NC24ads_A100_v4", 3),
    ("gemma-3-4b-instruct", "Standard_NV36ads_A10_v5", 1),
    ("deepseek-r1-distill-qwen-14b", "Standard_NC24ads_A100_v4", 1),
    ("deepseek-r1-0528", "Standard_NC80adis_H100_v5", 5),  # KAITO's example asks 6 of these
])
def test_node_estimator_sizes_them(name, sku, nodes):
    estimate = sizing.estimate_node_count(presets.get_preset(name), skus.lookup_sku(sku))
    assert estimate.ok and estimate.nodes == nodes


def _workspace(preset, sku, **annotations):
    return {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace",
            "metadata": {"name": "w", "namespace": "default", "annotations": annotations or None},
            "resource": {"instanceType": sku, "labelSelector": {"matchLabels": {"a": "b"}}},
            "inference": {"preset": {"name": preset}}}


def test_fit_checks_use_their_sizes():
    facts = build_catalog_facts()
    # gpt-oss-20b's 25.6 GiB do not fit one 24 GiB A10: vLLM spreads it (the estimator says 2 nodes) ...
    assert admit(_workspace("gpt-oss-20b", "Standard_NV36ads_A10_v5"), facts=facts).allowed
    # ... but the transformers runtime, asked for explicitly, serves from one node: refused.
    verdict = admit(_workspace("gpt-oss-20b", "Standard_NV36ads_A10_v5", **{"kaito.sh/runtime": "transformers"}),
                    facts=facts)
    assert {e.path for e in verdict.errors} == {"resource.instanceType"}
    assert any("Insufficient total GPU memory" in e.message for e in verdict.errors)
    assert admit(_workspace("ministral-3-8b-instruct", "Standard_NC24ads_A100_v4"), facts=facts).allowed


def test_kaito_models_lists_them():
    result = CliRunner().invoke(app, ["models", "-o", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    for name in ("deepseek-r1-distill-qwen-14b", "gemma-3-4b-instruct", "gpt-oss-20b", "ministral-3-8b-instruct",
                 "kimi-k2.5", "qwen3-8b-awq"):
        assert name in rows
    assert rows["gemma-3-4b-instruct"]["access"] == "gated"
    assert rows["kimi-k2.5"]["parameters_b"] is None  # the name does not say; nothing is made up
    table = CliRunner().invoke(app, ["models"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "gpt-oss-20b" in table.output
