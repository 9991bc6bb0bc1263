"""Golden checks of the preset catalog: KAITO v0.3.2's numbers, the newer models, lookups, schema errors."""

from __future__ import annotations

import copy
import functools
import math
import re
from importlib import resources

import pytest
import yaml

from kaito.catalog import presets
from kaito.catalog.presets import PresetFileError, build_catalog, get_preset, parse_presets

GIB = 1024**3

# Reference §5.1: name → (access, disk, GPUs, total GiB, per-GPU GiB, image tag, timeout s, distributed,
# tuning (gpus, total, per-GPU) or None, revision prefix KAITO v0.3.2 recorded or None)
V032 = {
    "falcon-7b": ("public", "50Gi", 1, 14, 0, "0.0.6", 1800, False, (1, 16, 16), "898df139"),
    "falcon-7b-instruct": ("public", "50Gi", 1, 14, 0, "0.0.6", 1800, False, None, "cf4b3c42"),
    "falcon-40b": ("public", "400Gi", 2, 90, 0, "0.0.7", 1800, False, (2, 90, 16), "4a70170c"),
    "falcon-40b-instruct": ("public", "400Gi", 2, 90, 0, "0.0.7", 1800, False, None, "ecb78d97"),
    "mistral-7b": ("public", "100Gi", 1, 14, 0, "0.0.7", 1800, False, (1, 16, 16), None),
    "mistral-7b-instruct": ("public", "100Gi", 1, 16, 0, "0.0.7", 1800, False, None, None),
    "phi-2": ("public", "50Gi", 1, 12, 0, "0.0.5", 1800, False, (1, 16, 16), None),
    "phi-3-mini-4k-instruct": ("public", "50Gi", 1, 9, 0, "0.0.2", 1800, False, (1, 72, 72), "d269012b"),
    "phi-3-mini-128k-instruct": ("public", "50Gi", 1, 9, 0, "0.0.2", 1800, False, (1, 72, 72), None),
    "phi-3-medium-4k-instruct": ("public", "50Gi", 1, 28, 0, "0.0.2", 1800, False, (1, 80, 80), None),
    "phi-3-medium-128k-instruct": ("public", "50Gi", 1, 28, 0, "0.0.2", 1800, False, (1, 80, 80), None),
    "llama-2-7b": ("private", "34Gi", 1, 14, 14, None, 600, False, None, None),
    "llama-2-7b-chat": ("private", "34Gi", 1, 16, 14, None, 600, False, None, None),
    "llama-2-13b": ("private", "46Gi", 2, 30, 15, None, 1200, True, None, None),
    "llama-2-13b-chat": ("private", "46Gi", 2, 30, 15, None, 1200, True, None, None),
    "llama-2-70b": ("private", "158Gi", 8, 152, 19, None, 1800, True, None, None),
    "llama-2-70b-chat": ("private", "158Gi", 8, 192, 19, None, 1800, True, None, None),
}

NEW = {
    "phi-3.5-mini-instruct": "microsoft/Phi-3.5-mini-instruct",
    "phi-4": "microsoft/phi-4",
    "phi-4-mini-instruct": "microsoft/Phi-4-mini-instruct",
    "llama-3.1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "mistral-7b-instruct-v0.3": "mistralai/Mistral-7B-Instruct-v0.3",
    "qwen2.5-0.5b-instruct": "Qwen/Qwen2.5-0.5B-Instruct",
    "qwen2.5-1.5b-instruct": "Qwen/Qwen2.5-1.5B-Instruct",
    "qwen2.5-7b-instruct": "Qwen/Qwen2.5-7B-Instruct",
    "qwen2.5-coder-7b-instruct": "Qwen/Qwen2.5-Coder-7B-Instruct",
}

# Reference §5.4 (KAITO v0.12 model_catalog.yaml): weights GiB and token limit.
V012_WEIGHTS = {
    "phi-4": (27.31, 16384), "phi-4-mini-instruct": (7.15, 131072), "phi-3.5-mini-instruct": (7.12, 131072),
    "phi-3-mini-4k-instruct": (7.12, 4096), "phi-3-medium-128k-instruct": (26.00, 131072),
    "llama-3.1-8b-instruct": (14.96, 131072), "mistral-7b-instruct-v0.3": (13.50, 32768),
    "qwen2.5-coder-7b-instruct": (14.19, 32768),
}


def test_catalog_loads_every_preset_once():
    names = [p.name for p in presets.all_presets()]
    assert len(names) == len(set(names))
    assert set(V032) | set(NEW) <= set(names)
    assert sum(p.origin == "v0.3.2" for p in presets.all_presets()) == 17


@pytest.mark.parametrize("name", sorted(V032))
def test_v032_numbers_reproduced(name):
    access, disk, gpus, total, per_gpu, tag, timeout, dist, tuning, rev_prefix = V032[name]
    p = get_preset(name)
    assert p is not None and p.origin == "v0.3.2"
    assert (p.access, p.disk, p.gpu.count, p.gpu.total_memory_gib, p.gpu.per_gpu_memory_gib) == (
        access, disk, gpus, total, per_gpu)
    assert (p.inference.image_tag, p.inference.readiness_timeout_s, p.distributed) == (tag, timeout, dist)
    if tuning is None:
        assert p.tuning is None and p.tuning_methods == frozenset()
    else:
        assert (p.tuning.gpu.count, p.tuning.gpu.total_memory_gib, p.tuning.gpu.per_gpu_memory_gib) == tuning
        assert p.tuning_methods == {"lora", "qlora"}
    if rev_prefix:
        assert p.hf.revision.startswith(rev_prefix)


def test_v032_run_parameters():
    assert get_preset("falcon-7b").inference.model_run_params == {"pipeline": "text-generation",
                                                                  "torch_dtype": "bfloat16"}
    assert get_preset("phi-2").inference.model_run_params["torch_dtype"] == "float16"
    phi3 = get_preset("phi-3-mini-4k-instruct")
    assert phi3.inference.model_run_params == {"pipeline": "text-generation", "torch_dtype": "auto",
                                               "trust_remote_code": ""}
    assert phi3.trust_remote_code
    assert get_preset("falcon-7b").inference.launcher_params == {
        "num_processes": "1", "num_machines": "1", "machine_rank": "0", "gpu_ids": "all"}
    llama = get_preset("llama-2-70b")
    assert llama.inference.base_command.endswith("torchrun")
    assert llama.inference.world_size == 8 and llama.inference.rdzv_params["rdzv_backend"] == "c10d"
    assert llama.inference.model_run_params == {"max_seq_len": "512", "max_batch_size": "8"}
    assert get_preset("falcon-7b").tuning.base_command == "python3 metrics_server.py & accelerate launch"


def test_falcon_40b_disk_is_400gi_and_says_why():
    for name in ("falcon-40b", "falcon-40b-instruct"):
        p = get_preset(name)
        assert p.disk == "400Gi" and "400" in p.notes
        assert presets.quantity_gib(p.disk) == 400


@pytest.mark.parametrize("name", sorted(NEW))
def test_new_presets_have_real_hub_ids(name):
    p = get_preset(name)
    assert p is not None and p.hf.repo == NEW[name]
    assert "transformers" in p.runtimes and "vllm" in p.runtimes
    if p.hf.pinned:
        assert re.fullmatch(r"[0-9a-f]{40}", p.hf.revision)
    else:
        assert p.hf.revision is None and "unpinned" in p.notes


def test_access_modes():
    assert get_preset("llama-3.1-8b-instruct").access == "gated"
    assert {p.name for p in presets.all_presets() if p.access == "private"} == {
        n for n in V032 if n.startswith("llama-2")}


@pytest.mark.parametrize("name", sorted(V012_WEIGHTS))
def test_weights_from_kaito_v012_catalog(name):
    weights, tokens = V012_WEIGHTS[name]
    p = get_preset(name)
    assert p.model.weights_gib == weights and not p.model.weights_estimated
    assert p.model.token_limit == tokens


@pytest.mark.parametrize("p", [p for p in presets.all_presets() if p.origin != "v0.3.2"], ids=lambda p: p.name)
def test_derived_sizing_follows_the_documented_rules(p):
    """The rules written at the top of presets.yaml reproduce every newer preset's numbers."""
    w = p.model.weights_gib
    assert p.gpu.total_memory_gib == math.ceil(w * 1.02 + 2.3 + 2048 * p.model.bytes_per_token / GIB)
    assert (p.gpu.count, p.gpu.per_gpu_memory_gib) == (1, 0)
    assert p.disk == f"{math.ceil(w + 80)}Gi"
    if p.tuning:
        assert p.tuning.methods["lora"].per_gpu_memory_gib == math.ceil(w * 1.2) + 4
        assert p.tuning.methods["qlora"].per_gpu_memory_gib == math.ceil(w * 0.3) + 4


def test_bytes_per_token_by_hand():
    # phi-4: 40 layers, 10 KV heads, head dim 128 → 2 × 40 × (2 × 10 × 128) = 204800
    assert get_preset("phi-4").model.bytes_per_token == 204800
    assert get_preset("falcon-7b").model.bytes_per_token == 2 * 32 * (2 * 1 * 64)


@pytest.mark.parametrize("query,expected", [
    ("phi-4", "phi-4"), ("PHI-4", "phi-4"), (" phi-4 ", "phi-4"), ("microsoft/phi-4", "phi-4"),
    ("Microsoft/Phi-4", "phi-4"), ("phi-3.5-mini", "phi-3.5-mini-instruct"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b-instruct-v0.3"),
    ("mistralai/Mistral-7B-v0.3", "mistral-7b-v0.3"), ("tiiuae/falcon-40b", "falcon-40b"),
    ("Qwen/Qwen2.5-0.5B-Instruct", "qwen2.5-0.5b-instruct"), ("qwen2.5-coder-7b", "qwen2.5-coder-7b-instruct"),
])
def test_lookup_by_name_alias_and_hub_id(query, expected):
    assert get_preset(query).name == expected


@pytest.mark.parametrize("query", ["", "gpt-5", "microsoft/phi-5", "llama-2"])
def test_unknown_names_are_none(query):
    assert get_preset(query) is None


def test_every_hub_id_resolves_to_a_preset_with_that_repo():
    for p in presets.all_presets():
        if p.hf_id:
            assert get_preset(p.hf_id).hf_id == p.hf_id


def test_presets_are_frozen():
    p = get_preset("phi-4")
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen models
        p.gpu.count = 2


@functools.cache
def _packaged_text() -> str:
    return resources.files("kaito.catalog").joinpath("presets.yaml").read_text()


@functools.cache
def _packaged() -> dict:
    return yaml.load(_packaged_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _packaged_doc() -> dict:
    return copy.deepcopy(_packaged())


def _broken(mutate) -> dict:
    doc = _packaged_doc()
    mutate(doc["presets"])
    return {"presets": doc["presets"]}


@pytest.mark.parametrize("mutate,words", [
    (lambda ps: ps[0]["gpu"].update(count=0), ["falcon-7b", "gpu.count"]),
    (lambda ps: ps[0].update(disk="lots"), ["falcon-7b", "disk", "quantity"]),
    (lambda ps: ps[1].update(colour="blue"), ["falcon-7b-instruct", "colour"]),
    (lambda ps: ps[2].update(runtimes=["tgi"]), ["falcon-40b", "runtimes"]),
    (lambda ps: ps[3]["hf"].update(revision="abc", pinned=True), ["falcon-40b-instruct", "hf", "40-hex"]),
    (lambda ps: ps[4].pop("gpu"), ["mistral-7b", "gpu", "required"]),
    (lambda ps: ps[5].update(name="Mistral"), ["Mistral", "lower-case"]),
    (lambda ps: ps[6].update(name="falcon-7b"), ["falcon-7b", "already used"]),
])
def test_broken_presets_file_names_preset_and_field(mutate, words):
    with pytest.raises(PresetFileError) as err:
        build_catalog(_broken(mutate))
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("text,words", [
    ("presets: [", ["not valid YAML"]),
    ("models: []", ["presets"]),
    ("presets: []\nextra: 1", ["extra"]),
])
def test_broken_file_shape(text, words):
    with pytest.raises(PresetFileError) as err:
        parse_presets(text)
    assert all(w in str(err.value) for w in words)


def test_packaged_text_parses_like_the_loader():
    assert [p.name for p in parse_presets(_packaged_text()).presets] == [p.name for p in presets.all_presets()]


def test_adding_a_model_is_a_data_change():
    doc = _packaged_doc()
    new = dict(doc["presets"][-1], name="my-model", aliases=["acme/my-model"],
               hf={"repo": "acme/my-model", "revision": None, "pinned": False})
    catalog = build_catalog({"presets": [*doc["presets"], new]})
    assert catalog.get("acme/my-model").name == "my-model"
