"""The InferenceSet and RAGEngine CRDs: structural schemas, KAITO's names and columns, both versions
served with v1beta1 stored and conversion through the webhook, and the InferenceSet's scale
subresource pointing at fields the schema has (what `kubectl scale inferenceset/x --replicas=3`,
KEDA and an HPA use). Objects our models accept are accepted by the CRD schemas too (jsonschema)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given

from kaito.api import crd_kinds, kinds
from tests.unit.api.test_documents_and_crd import _walk_structural
from tests.unit.api.test_kinds_conversion_properties import ALPHA, BETA, SETTINGS, inferencesets, ragengines

BUILDERS = {"InferenceSet": crd_kinds.build_inferenceset_crd, "RAGEngine": crd_kinds.build_ragengine_crd}


def versions(kind: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in BUILDERS[kind]()["spec"]["versions"]}


def schema_at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for part in path.strip(".").split("."):
        node = node["properties"][part]
    return node


@pytest.mark.parametrize("kind", BUILDERS)
def test_schemas_are_structural_and_both_versions_served_v1beta1_stored(kind: str) -> None:
    crd = BUILDERS[kind]()
    assert crd["spec"]["scope"] == "Namespaced" and crd["spec"]["group"] == "kaito.sh"
    found = versions(kind)
    assert list(found) == ["v1alpha1", "v1beta1"] and all(v["served"] for v in found.values())
    assert (found["v1alpha1"]["storage"], found["v1beta1"]["storage"]) == (False, True)
    for version in found.values():
        problems: list[str] = []
        _walk_structural(version["schema"]["openAPIV3Schema"], "", problems)
        assert problems == []
    conversion = crd["spec"]["conversion"]
    assert conversion["strategy"] == "Webhook" and conversion["webhook"]["clientConfig"]["service"]["path"] == "/convert"


def test_inferenceset_scale_subresource_and_columns() -> None:
    crd = crd_kinds.build_inferenceset_crd()
    names = crd["spec"]["names"]
    assert (crd["metadata"]["name"], names["plural"], names["shortNames"], names["categories"]) == (
        "inferencesets.kaito.sh", "inferencesets", ["is", "isets"], ["inferenceset"])
    for version in versions("InferenceSet").values():
        scale = version["subresources"]["scale"]
        assert scale == {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                         "labelSelectorPath": ".status.selector"}
        assert "status" in version["subresources"]
        schema = version["schema"]["openAPIV3Schema"]
        assert schema_at(schema, scale["specReplicasPath"])["type"] == "integer"
        assert schema_at(schema, scale["statusReplicasPath"])["type"] == "integer"
        assert schema_at(schema, scale["labelSelectorPath"])["type"] == "string"
        replicas = schema_at(schema, "spec.replicas")
        assert (replicas["default"], replicas["minimum"]) == (1, 0)
        assert schema["required"] == ["spec"] and sorted(schema_at(schema, "spec")["required"]) == [
            "labelSelector", "template"]
        assert [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]] == [
            ("Replicas", ".spec.replicas"), ("ReadyReplicas", ".status.readyReplicas"),
            ("Age", ".metadata.creationTimestamp")]
        assert schema_at(schema, "spec.updateStrategy")["default"] == {"type": "RollingUpdate",
                                                                        "rollingUpdate": {"maxUnavailable": 1}}
        assert schema_at(schema, "spec.template.metadata")["x-kubernetes-preserve-unknown-fields"] is True
    beta = versions("InferenceSet")["v1beta1"]["schema"]["openAPIV3Schema"]
    assert "partition" in schema_at(beta, "spec.template.resource")["properties"]
    alpha = versions("InferenceSet")["v1alpha1"]["schema"]["openAPIV3Schema"]
    assert "partition" not in schema_at(alpha, "spec.template.resource")["properties"]
    window = schema_at(beta, "spec.autoUpgrade")
    assert window["properties"]["strategy"]["enum"] == ["InPlace", "Surge"]
    assert window["properties"]["maintenanceWindow"]["properties"]["duration"]["default"] == "4h"


def test_ragengine_names_columns_and_shapes() -> None:
    crd = crd_kinds.build_ragengine_crd()
    assert (crd["metadata"]["name"], crd["spec"]["names"]["shortNames"]) == ("ragengines.kaito.sh", ["rag"])
    found = versions("RAGEngine")
    for version in found.values():
        assert version["subresources"] == {"status": {}}
        assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Instance", "ResourceReady",
                                                                           "ServiceReady", "Age"]
        assert version["additionalPrinterColumns"][0]["jsonPath"] == ".spec.compute.instanceType"
        assert schema_at(version["schema"]["openAPIV3Schema"], "spec")["required"] == ["embedding"]
    beta, alpha = (found[v]["schema"]["openAPIV3Schema"] for v in ("v1beta1", "v1alpha1"))
    assert schema_at(beta, "spec.storage.persistentVolume")["required"] == ["persistentVolumeClaim"]
    assert set(schema_at(beta, "spec.storage")["properties"]) == {"persistentVolume", "vectorDB"}
    assert set(schema_at(alpha, "spec.storage")["properties"]) == {"persistentVolumeClaim", "mountPath"}
    assert {"queryServiceName", "indexServiceName"} <= set(schema_at(alpha, "spec")["properties"])
    assert "guardrails" in schema_at(beta, "spec")["properties"] and "guardrails" not in schema_at(alpha, "spec")[
        "properties"]
    assert schema_at(alpha, "spec.compute.instanceType")["default"] == "Standard_NC24ads_A100_v4"
    assert "default" not in schema_at(beta, "spec.compute.instanceType")


@SETTINGS
@given(inferencesets(ALPHA) | inferencesets(BETA) | ragengines(ALPHA) | ragengines(BETA))
def test_what_the_models_accept_the_crd_schema_accepts(data):
    wire = kinds.KINDS[data["kind"]].versions[data["apiVersion"]]
    obj = wire.model.model_validate(data).to_dict()
    schema = versions(data["kind"])[data["apiVersion"].split("/")[1]]["schema"]["openAPIV3Schema"]
    jsonschema.validate(obj, schema)


def test_the_crd_schema_refuses_a_negative_replica_count() -> None:
    schema = versions("InferenceSet")["v1beta1"]["schema"]["openAPIV3Schema"]
    obj = {"spec": {"replicas": -1, "labelSelector": {}, "template": {"inference": {}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, schema)
