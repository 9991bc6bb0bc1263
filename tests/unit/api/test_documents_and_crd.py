"""YAML documents → Workspaces with file/line, and the generated CRD (structural, equal to the chart's copy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kaito.api import documents
from kaito.api.crd import build_crd
from kaito.api.documents import parse_documents

ROOT = Path(__file__).resolve().parents[3]
COMMITTED_CRD = ROOT / "charts" / "kaito" / "crds" / "workspaces.kaito.sh.yaml"

TWO_DOCS = """\
apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: good
resource:
  labelSelector:
    matchLabels: {a: b}
inference:
  preset: {name: phi-2}
---
apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: bad
resource:
  count: many
  labelSelector: {}
inference:
  adapters:
  - source:
      name: a
      colour: red
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {training_config.yaml: "x"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other}
"""


def test_documents_parse_with_field_lines() -> None:
    docs, file_problems = parse_documents(TWO_DOCS, "two.yaml")
    assert file_problems == []
    assert [d.hub is not None for d in docs] == [True, False, False, False]
    bad = {(p.error.path, p.line) for p in docs[1].problems}
    assert ("resource.count", 16) in bad
    assert ("inference.adapters[0].source.colour", 22) in bad
    assert docs[2].problems == []  # ConfigMaps are kept as data, silently
    assert docs[3].problems[0].error.severity == "warning"
    assert str(docs[1].problems[0]).startswith("two.yaml:16: error: resource.count:")
    assert docs[0].line_of("inference.preset.name") == 9
    assert docs[0].line_of("inference.adapters[3].source") == 8  # deepest existing node: inference


def test_yaml_syntax_error_has_line() -> None:
    docs, problems = parse_documents(
        "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata: {name: [x\n", "s.yaml"
    )
    assert len(problems) == 1 and problems[0].line is not None and problems[0].line >= 3
    assert "YAML syntax error" in problems[0].error.message


def test_non_mapping_and_missing_kind() -> None:
    docs, _ = parse_documents("- a\n- b\n---\nmetadata: {name: x}\n", "l.yaml")
    assert "not a mapping" in docs[0].problems[0].error.message
    assert docs[1].problems[0].error.path == "apiVersion"
    docs, _ = parse_documents("apiVersion: kaito.sh/v2\nkind: Workspace\n", "b.yaml")
    assert (
        docs[0].problems[0].error.path == "apiVersion"
        and "unsupported version" in docs[0].problems[0].error.message
    )


def _walk_structural(node: dict[str, Any], path: str, problems: list[str]) -> None:
    for banned in ("$ref", "anyOf", "oneOf", "allOf", "title", "$defs"):
        if banned in node:
            problems.append(f"{path}: {banned}")
    if node.get("x-kubernetes-preserve-unknown-fields"):
        if node.get("type") != "object":
            problems.append(f"{path}: schemaless node without type object")
        return
    if "type" not in node:
        problems.append(f"{path}: no type")
    for key, sub in node.get("properties", {}).items():
        _walk_structural(sub, f"{path}.{key}", problems)
    if isinstance(node.get("items"), dict):
        _walk_structural(node["items"], f"{path}[]", problems)
    if isinstance(node.get("additionalProperties"), dict):
        _walk_structural(node["additionalProperties"], f"{path}{{}}", problems)


def test_crd_is_structural() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    problems: list[str] = []
    _walk_structural(schema, "", problems)
    assert problems == []


def test_crd_schemaless_only_where_kaito_is() -> None:
    found: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("x-kubernetes-preserve-unknown-fields"):
            found.append(path)
        for key, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")
    assert sorted(found) == sorted(
        [
            ".inference.template",
            ".inference.adapters[].source.volumeSource",
            ".tuning.input.volumeSource",
            ".tuning.output.volumeSource",
        ]
    )


def test_crd_shape_matches_kaito() -> None:
    crd = build_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "workspaces.kaito.sh"
    assert spec["names"]["shortNames"] == ["wk", "wks"] and spec["names"]["categories"] == ["workspace"]
    assert spec["scope"] == "Namespaced"
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Instance",
        "ResourceReady",
        "InferenceReady",
        "JobStarted",
        "WorkspaceSucceeded",
        "Age",
    ]
    props = version["schema"]["openAPIV3Schema"]["properties"]
    assert props["resource"]["required"] == ["labelSelector"]
    assert props["resource"]["properties"]["count"]["default"] == 1
    assert props["resource"]["properties"]["instanceType"]["default"] == "Standard_NC12s_v3"
    assert sorted(props["tuning"]["required"]) == ["input", "output"]
    assert props["inference"]["properties"]["preset"]["properties"]["accessMode"]["enum"] == [
        "public",
        "private",
    ]
    assert "spec" not in props


def test_crd_serves_both_versions_stores_v1beta1_and_converts_through_the_webhook() -> None:
    spec = build_crd()["spec"]
    versions = {v["name"]: v for v in spec["versions"]}
    assert list(versions) == ["v1alpha1", "v1beta1"]
    assert all(v["served"] for v in versions.values())
    assert (versions["v1alpha1"]["storage"], versions["v1beta1"]["storage"]) == (False, True)
    beta = versions["v1beta1"]
    assert [c["name"] for c in beta["additionalPrinterColumns"]] == [
        "Instance", "ResourceReady", "InferenceReady", "JobStarted", "WorkspaceSucceeded", "TargetNodeCount",
        "State", "Age"]
    assert beta["additionalPrinterColumns"][5] == {"name": "TargetNodeCount", "type": "integer",
                                                   "jsonPath": ".status.targetNodeCount"}
    props = beta["schema"]["openAPIV3Schema"]["properties"]
    assert "default" not in props["resource"]["properties"]["instanceType"]  # no SKU default in v1beta1
    assert props["resource"]["properties"]["partition"]["properties"]["mode"]["enum"] == ["mig", "accelerator"]
    assert "modelAccessSecret" in props["inference"]["properties"]["preset"]["properties"]["presetOptions"]["properties"]
    assert {"state", "targetNodeCount", "performance"} <= set(props["status"]["properties"])
    problems: list[str] = []
    _walk_structural(beta["schema"]["openAPIV3Schema"], "", problems)
    assert problems == []
    conversion = spec["conversion"]
    assert conversion["strategy"] == "Webhook"
    assert conversion["webhook"]["conversionReviewVersions"] == ["v1"]
    assert conversion["webhook"]["clientConfig"]["service"]["path"] == "/convert"


def test_documents_read_either_version_into_the_hub() -> None:
    text = (
        "apiVersion: kaito.sh/v1beta1\nkind: Workspace\nmetadata:\n  name: b\nresource:\n"
        "  labelSelector: {matchLabels: {a: b}}\n  partition: {mode: tpu}\n"
    )
    docs, _ = parse_documents(text, "b.yaml")
    assert [(p.error.path, p.line) for p in docs[0].problems] == [("resource.partition.mode", 7)]
    ok, _ = parse_documents(text.replace("tpu", "mig"), "b.yaml")
    assert ok[0].problems == [] and ok[0].api_version == "kaito.sh/v1beta1"
    assert ok[0].hub.resource.partition.mode == "mig"
    alpha, _ = parse_documents(text.replace("v1beta1", "v1alpha1").replace("  partition: {mode: tpu}\n", ""), "a.yaml")
    assert alpha[0].api_version == "kaito.sh/v1alpha1" and alpha[0].hub.resource.instance_type == "Standard_NC12s_v3"
    only, _ = parse_documents(text, "b.yaml", versions=(documents.SERVED_VERSIONS[0],))
    assert [p.error.path for p in only[0].problems] == ["apiVersion"] and only[0].hub is None


def test_committed_crd_equals_generated() -> None:
    committed = yaml.safe_load(COMMITTED_CRD.read_text())
    assert committed == build_crd(), "regenerate with: kaito crd > charts/kaito/crds/workspaces.kaito.sh.yaml"
