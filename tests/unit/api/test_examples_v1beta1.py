"""`examples/v1beta1/`: every Workspace is admitted through the entry point with the real catalog,
with the ConfigMaps of its own file; the forms that exist in both versions are the same Workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kaito.api.admission import ClusterReads, admit, parse_request
from kaito.catalog.facts import build_catalog_facts

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FILES = sorted(p.relative_to(EXAMPLES / "v1beta1").as_posix() for p in (EXAMPLES / "v1beta1").rglob("*.yaml"))


def _load(path: Path) -> tuple[list[dict], dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    configmaps = {("default", d["metadata"]["name"]): d["data"] for d in docs if d["kind"] == "ConfigMap"}
    return [d for d in docs if d["kind"] == "Workspace"], configmaps


@pytest.mark.parametrize("name", FILES)
def test_v1beta1_example_is_admitted(name):
    workspaces, configmaps = _load(EXAMPLES / "v1beta1" / name)
    assert len(workspaces) == 1
    verdict = admit(workspaces[0], facts=build_catalog_facts(),
                    reads=ClusterReads(configmaps=configmaps, complete=bool(configmaps)))
    assert verdict.api_version == "kaito.sh/v1beta1"
    assert verdict.allowed and verdict.warnings == [], verdict.problems


@pytest.mark.parametrize("name", ["tuning/phi-3-mini-128k-instruct-qlora.yaml"])
def test_v1beta1_form_is_the_same_workspace_as_the_v1alpha1_one(name):
    (alpha,), _ = _load(EXAMPLES / name)
    (beta,), _ = _load(EXAMPLES / "v1beta1" / name)
    assert parse_request(alpha).workspace == parse_request(beta).workspace


def test_examples_show_the_v1beta1_features():
    text = "".join((EXAMPLES / "v1beta1" / f).read_text() for f in FILES)
    for feature in ("modelAccessSecret", "inference_config.yaml", "kaito.sh/runtime", "kaito.sh/performance-mode",
                    "volumeSource", "training_config.yaml"):
        assert feature in text, feature
