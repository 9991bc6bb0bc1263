"""The `workspaces.kaito.sh` CustomResourceDefinition, generated from the wire models of each version.

Deriving the schemas from the models keeps the API server's view and ours identical. Pydantic's JSON
schema uses `$ref`, `anyOf [X, null]` and `title`, none of which a structural CRD schema allows, so
they are resolved and stripped here. Only the pod template and volume sources stay schemaless
(`x-kubernetes-preserve-unknown-fields`), as in KAITO.

Both versions are served and v1beta1 is stored, as in KAITO v0.12. Unlike KAITO (no conversion: the
API server only rewrites `apiVersion`, and v1beta1-only fields are lost to v1alpha1 clients),
`spec.conversion` sends every conversion to the operator's webhook (`/convert`), which converts
through the hub without loss. The chart installs this CRD pointing at the default release's Service;
the operator sets the Service it really runs behind and the caBundle at start-up.
"""

from __future__ import annotations

from typing import Any

from kaito.api import v1alpha1, v1beta1
from kaito.api.hub import GROUP, KIND

PLURAL = "workspaces"
CRD_NAME = f"{PLURAL}.{GROUP}"
CONVERSION_PATH = "/convert"
# The Service of a default install (`helm install kaito charts/kaito -n kaito-workspace`).
DEFAULT_WEBHOOK_SERVICE = "kaito-webhook"
DEFAULT_WEBHOOK_NAMESPACE = "kaito-workspace"
SINGULAR = "workspace"
SHORT_NAMES = ["wk", "wks"]
CATEGORIES = ["workspace"]
# KAITO's CRD marks these required; the models leave them optional so that validation can report
# them with KAITO's own words (rules 16 and 17) instead of a bare "field required".
# The same for the RAGEngine (its rules report a missing embedding or volume claim in their own words).
_EXTRA_REQUIRED = {"TuningSpec": ["input", "output"], "RAGEngineSpec": ["embedding"],
                   "PersistentVolumeConfig": ["persistentVolumeClaim"]}
_SCHEMALESS = {"x-kubernetes-preserve-unknown-fields": True, "type": "object"}
# Value constraints a field declares (metav1.Condition's reason pattern and lengths, say) go into the
# CRD as they are, so the API server refuses what the model refuses.
_CONSTRAINTS = {
    "string": ("minLength", "maxLength", "pattern"),
    "integer": ("minimum", "maximum", "format"),
}


def _condition_column(name: str) -> dict[str, Any]:
    return {"name": name, "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{name}")].status'}


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
PRINTER_COLUMNS = [
    {"name": "Instance", "type": "string", "jsonPath": ".resource.instanceType"},
    _condition_column("ResourceReady"),
    _condition_column("InferenceReady"),
    _condition_column("JobStarted"),
    _condition_column("WorkspaceSucceeded"),
    _AGE,
]
# KAITO v0.12's v1beta1 columns add the node estimator's count and the state.
PRINTER_COLUMNS_V1BETA1 = [
    *PRINTER_COLUMNS[:-1],
    {"name": "TargetNodeCount", "type": "integer", "jsonPath": ".status.targetNodeCount"},
    {"name": "State", "type": "string", "jsonPath": ".status.state"},
    _AGE,
]
VERSIONS = ((v1alpha1, PRINTER_COLUMNS), (v1beta1, PRINTER_COLUMNS_V1BETA1))
STORAGE_VERSION = v1beta1.VERSION


def _structural(schema: dict[str, Any], defs: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """One JSON-schema node → a structural OpenAPI v3 node."""
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        return _structural(defs[ref], defs, ref)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot make a structural schema of a union: {schema}")
        merged = _structural(options[0], defs)
        # pydantic puts a field's own schema extras (an int's "format") beside the anyOf, not in it.
        merged.update(
            (key, schema[key]) for key in _CONSTRAINTS.get(merged.get("type"), ()) if key in schema
        )
        if "default" in schema and schema["default"] is not None:
            merged["default"] = schema["default"]
        return merged
    kind = schema.get("type")
    out: dict[str, Any] = {}
    if "enum" in schema or "const" in schema:
        out["type"] = kind or "string"
        out["enum"] = list(schema.get("enum") or [schema["const"]])
    elif kind == "object" and "properties" in schema:
        out["type"] = "object"
        out["properties"] = {key: _structural(sub, defs) for key, sub in schema["properties"].items()}
        required = list(schema.get("required", [])) + _EXTRA_REQUIRED.get(name or "", [])
        if required:
            out["required"] = required
    elif kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out = {"type": "object", "additionalProperties": _structural(extra, defs)}
        else:
            out = dict(_SCHEMALESS)
    elif kind == "array":
        out = {"type": "array", "items": _structural(schema["items"], defs)}
    elif kind == "string" and schema.get("format") == "date-time":
        out = {"type": "string", "format": "date-time"}
    elif kind in ("string", "integer", "boolean", "number"):
        out = {"type": kind}
        out.update((key, schema[key]) for key in _CONSTRAINTS.get(kind, ()) if key in schema)
    else:
        raise ValueError(f"no structural form for schema node {schema}")
    if "default" in schema and schema["default"] is not None:
        out["default"] = schema["default"]
    return out


def build_openapi_schema(model: Any = v1alpha1.Workspace) -> dict[str, Any]:
    """The structural schema of one version's wire model (v1alpha1 unless told)."""
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    defs = raw.get("$defs", {})
    props = {key: _structural(sub, defs) for key, sub in raw["properties"].items()}
    # Kubernetes owns these; a CRD may only say they exist.
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}
    return {"type": "object", "properties": props}


def build_conversion(service: str = DEFAULT_WEBHOOK_SERVICE, namespace: str = DEFAULT_WEBHOOK_NAMESPACE,
                     ca_bundle: str | None = None) -> dict[str, Any]:
    """`spec.conversion`: every conversion goes to the operator's HTTPS webhook (ConversionReview v1)."""
    client: dict[str, Any] = {"service": {"name": service, "namespace": namespace, "path": CONVERSION_PATH,
                                          "port": 443}}
    if ca_bundle:
        client["caBundle"] = ca_bundle
    return {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": client}}


def build_crd() -> dict[str, Any]:
    """The `apiextensions.k8s.io/v1` CRD for `workspaces.kaito.sh` as a plain dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "scope": "Namespaced",
            "conversion": build_conversion(),
            "versions": [
                {
                    "name": module.VERSION,
                    "served": True,
                    "storage": module.VERSION == STORAGE_VERSION,
                    "additionalPrinterColumns": [dict(c) for c in columns],
                    "schema": {"openAPIV3Schema": build_openapi_schema(module.Workspace)},
                    "subresources": {"status": {}},
                }
                for module, columns in VERSIONS
            ],
        },
    }
