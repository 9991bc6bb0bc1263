"""The `inferencesets.kaito.sh` and `ragengines.kaito.sh` CRDs, generated from the wire models.

Built as `kaito.api.crd` builds the Workspace CRD (structural schemas from each version's model,
both versions served, v1beta1 stored, conversion through the operator's webhook — which KAITO
declares for RAGEngines but never wires). The InferenceSet CRD has the scale subresource
(`.spec.replicas`, `.status.replicas`, `.status.selector`), so `kubectl scale inferenceset/x
--replicas=3`, KEDA and an HPA can drive it. Printer columns are KAITO v0.12's.
"""

from __future__ import annotations

from typing import Any

from kaito.api import inferenceset, kinds, ragengine
from kaito.api.crd import build_conversion, build_openapi_schema
from kaito.api.hub import GROUP

INFERENCESET_CRD = f"{inferenceset.PLURAL}.{GROUP}"
RAGENGINE_CRD = f"{ragengine.PLURAL}.{GROUP}"
CRD_NAMES = (INFERENCESET_CRD, RAGENGINE_CRD)
SCALE = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
         "labelSelectorPath": ".status.selector"}
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _condition(name: str) -> dict[str, Any]:
    return {"name": name, "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{name}")].status'}


INFERENCESET_COLUMNS = [
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "ReadyReplicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
    _AGE,
]
RAGENGINE_COLUMNS = [
    {"name": "Instance", "type": "string", "jsonPath": ".spec.compute.instanceType"},
    _condition("ResourceReady"),
    _condition("ServiceReady"),
    _AGE,
]


def _schema(model: Any) -> dict[str, Any]:
    """The version's structural schema; `spec` required where the model requires it (InferenceSet)."""
    schema = build_openapi_schema(model)
    if "spec" in model.model_json_schema(by_alias=True).get("required", []):
        schema["required"] = ["spec"]
    return schema


def _build(served: kinds.ServedKind, *, singular: str, short_names: list[str], columns: list[dict[str, Any]],
           subresources: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{served.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {"kind": served.kind, "listKind": f"{served.kind}List", "plural": served.plural,
                      "singular": singular, "shortNames": list(short_names), "categories": [singular]},
            "scope": "Namespaced",
            "conversion": build_conversion(),
            "versions": [
                {
                    "name": api_version.rsplit("/", 1)[-1],
                    "served": True,
                    "storage": api_version == served.storage_version,
                    "additionalPrinterColumns": [dict(c) for c in columns],
                    "schema": {"openAPIV3Schema": _schema(wire.model)},
                    "subresources": {key: dict(value) for key, value in subresources.items()},
                }
                for api_version, wire in served.versions.items()
            ],
        },
    }


def build_inferenceset_crd() -> dict[str, Any]:
    return _build(kinds.INFERENCESET, singular="inferenceset", short_names=["is", "isets"],
                  columns=INFERENCESET_COLUMNS, subresources={"status": {}, "scale": SCALE})


def build_ragengine_crd() -> dict[str, Any]:
    return _build(kinds.RAGENGINE, singular="ragengine", short_names=["rag"], columns=RAGENGINE_COLUMNS,
                  subresources={"status": {}})


BUILDERS = {INFERENCESET_CRD: build_inferenceset_crd, RAGENGINE_CRD: build_ragengine_crd}
