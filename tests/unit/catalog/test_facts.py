"""CatalogFacts (the ModelFacts the admission rules use) and the read-only model-size reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaito.api.facts import ModelFacts
from kaito.catalog import hub_cache
from kaito.catalog.facts import CatalogFacts

GIB = 1024**3


def _sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)  # sparse: a "20 GiB" weight file costs no disk


def make_hub_cache(root: Path, repo_id: str, files: dict[str, int], sha: str = "a" * 40) -> Path:
    """A Hugging Face cache entry laid out the way huggingface_hub writes one (blobs, snapshots, refs)."""
    repo_dir = root / f"models--{repo_id.replace('/', '--')}"
    snap = repo_dir / "snapshots" / sha
    for i, (name, size) in enumerate(files.items()):
        blob = repo_dir / "blobs" / f"{i:040x}"
        _sparse(blob, size)
        snap.mkdir(parents=True, exist_ok=True)
        (snap / name).symlink_to(blob)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(sha)
    return snap


def test_satisfies_the_protocol():
    facts: ModelFacts = CatalogFacts()
    assert facts.preset("phi-4") is not None


def test_catalog_preset_facts():
    f = CatalogFacts()
    phi4 = f.preset("microsoft/phi-4")
    assert (phi4.name, phi4.access, phi4.tuning_methods, phi4.known_size) == (
        "phi-4", "public", frozenset({"lora", "qlora"}), True)
    assert f.preset("llama-2-7b").access == "private"
    assert f.preset("llama-2-7b").tuning_methods == frozenset()
    assert f.preset("llama-3.1-8b-instruct").access == "gated"
    assert f.preset("phi-2").deprecated


def test_hub_ids_and_local_dirs_are_accepted_with_unknown_size():
    f = CatalogFacts()
    other = f.preset("Qwen/Qwen3-8B")
    assert other.name == "Qwen/Qwen3-8B" and not other.known_size and other.access == "public"
    assert f.preset("/models/my-llama").known_size is False


@pytest.mark.parametrize("name", ["not-a-model", "a/b/c", "", "   ", "org/", None, 42])
def test_unknown_names(name):
    assert CatalogFacts().preset(name) is None


def test_unsupported_instance_type_lists_skus():
    [err] = CatalogFacts().check_fit("Standard_invalid_sku", 1, "falcon-7b")
    assert err.path == "resource.instanceType" and err.severity == "error"
    assert "Unsupported instance type Standard_invalid_sku" in err.message
    assert "Standard_NC12s_v3" in err.message and "Standard_ND96amsr_A100_v4" in err.message


@pytest.mark.parametrize("sku", ["Standard_NC999_v9", "Standard_D4s_v5"])
def test_unknown_n_and_d_series_accepted_without_fit_check(sku):
    assert CatalogFacts().check_fit(sku, 1, "llama-2-70b") == []


def test_aws_checks_its_own_table():
    aws = CatalogFacts(cloud="aws")
    assert aws.check_fit("p4d.24xlarge", 1, "falcon-40b") == []
    assert "Insufficient total GPU memory" in aws.check_fit("g5.xlarge", 1, "falcon-40b")[-1].message
    [err] = aws.check_fit("Standard_NC999_v9", 1, "falcon-7b")
    assert "Unsupported instance type" in err.message and "p4d.24xlarge" in err.message
    with pytest.raises(ValueError):
        CatalogFacts(cloud="gcp")


def test_fit_for_catalog_preset():
    f = CatalogFacts()
    assert f.check_fit("Standard_NC96ads_A100_v4", 1, "falcon-40b") == []
    errs = f.check_fit("Standard_NC12s_v3", 1, "FALCON-40B")
    assert len(errs) == 1 and "90Gi" in errs[0].message
    assert f.check_fit("Standard_NC12s_v3", 1, None) == []  # a template: nothing to fit
    assert f.check_fit("Standard_NC12s_v3", 1, "no-such-preset") == []  # rule 9 reports it, not rule 3
    assert f.check_fit("", 1, "phi-4") == []


def test_unknown_size_is_a_warning_not_an_error():
    [w] = CatalogFacts().check_fit("Standard_NC6s_v3", 1, "Qwen/Qwen3-8B")
    assert w.severity == "warning" and w.path == "resource.instanceType" and "Qwen/Qwen3-8B" in w.message


def test_known_size_from_injected_reader():
    sizes = {"acme/big": 40.0, "acme/small": 3.0}
    f = CatalogFacts(local_model_size=sizes.get)
    assert f.preset("acme/big").known_size
    [err] = f.check_fit("Standard_NC6s_v3", 1, "acme/big")
    assert err.severity == "error" and "Insufficient total GPU memory" in err.message and "40Gi" in err.message
    assert f.check_fit("Standard_NC6s_v3", 3, "acme/big") == []  # 48 GiB
    assert f.check_fit("Standard_NC6s_v3", 1, "acme/small") == []


def test_a_failing_reader_never_breaks_admission():
    def broken(name):
        raise OSError("disk on fire")

    f = CatalogFacts(local_model_size=broken)
    assert f.preset("acme/x").known_size is False
    assert f.check_fit("Standard_NC6s_v3", 1, "acme/x")[0].severity == "warning"


def test_hub_cache_reader(tmp_path):
    make_hub_cache(tmp_path, "acme/tiny", {"config.json": 500, "model-00001.safetensors": 3 * GIB,
                                           "model-00002.safetensors": 2 * GIB, "pytorch_model.bin": 9 * GIB})
    assert hub_cache.read_hub_cache_size("acme/tiny", tmp_path) == pytest.approx(5.0)
    assert hub_cache.read_hub_cache_size("ACME/Tiny", tmp_path) == pytest.approx(5.0)
    assert hub_cache.read_hub_cache_size("acme/absent", tmp_path) is None
    assert hub_cache.read_hub_cache_size("acme/tiny", tmp_path / "no-cache-here") is None
    f = CatalogFacts(local_model_size=lambda n: hub_cache.read_model_size(n, tmp_path))
    assert f.preset("acme/tiny").known_size
    [err] = f.check_fit("Standard_NV6ads_A10_v5", 1, "acme/tiny")  # 4 GiB of GPU for 5 GiB of weights
    assert "5Gi" in err.message and "4Gi" in err.message
    assert f.check_fit("Standard_NV6ads_A10_v5", 2, "acme/tiny") == []


def test_hub_cache_reader_falls_back_to_bin_weights(tmp_path):
    make_hub_cache(tmp_path, "acme/old", {"config.json": 10, "pytorch_model.bin": 2 * GIB})
    assert hub_cache.read_hub_cache_size("acme/old", tmp_path) == pytest.approx(2.0)


def test_local_model_directory(tmp_path):
    model = tmp_path / "my-model"
    _sparse(model / "model.safetensors", 5 * GIB)
    assert hub_cache.read_local_dir_size(model) is None  # no config.json: not a model dir
    (model / "config.json").write_text("{}")
    assert hub_cache.read_local_dir_size(model) == pytest.approx(5.0)
    f = CatalogFacts(local_model_size=hub_cache.read_model_size)
    assert f.preset(str(model)).known_size
    assert f.check_fit("Standard_NC6s_v3", 1, str(model)) == []
    assert hub_cache.read_model_size("not a name") is None


@pytest.mark.parametrize("name,hub,local", [
    ("org/model", True, False), ("/abs/dir", False, True), ("./rel", False, True), ("~/m", False, True),
    ("a/b/c", False, False), ("phi-4", False, False), ("org/ model", False, False),
])
def test_name_shapes(name, hub, local):
    assert (hub_cache.looks_like_hub_id(name), hub_cache.looks_like_local_dir(name)) == (hub, local)
