"""The `workspaces.kaito.sh` CustomResourceDefinition, generated from the pydantic models.

Deriving the schema from the models keeps the API server's view and ours identical. Pydantic's JSON
schema uses `$ref`, `anyOf [X, null]` and `title`, none of which a structural CRD schema allows, so
they are resolved and stripped here. Only the pod template and volume sources stay schemaless
(`x-kubernetes-preserve-unknown-fields`), as in KAITO.
"""

from __future__ import annotations

from typing import Any

from kaito.api.v1alpha1 import GROUP, KIND, VERSION, Workspace

PLURAL = "workspaces"
SINGULAR = "workspace"
SHORT_NAMES = ["wk", "wks"]
CATEGORIES = ["workspace"]
# KAITO's CRD marks these required; the models leave them optional so that validation can report
# them with KAITO's own words (rules 16 and 17) instead of a bare "field required".
_EXTRA_REQUIRED = {"TuningSpec": ["input", "output"]}
_SCHEMALESS = {"x-kubernetes-preserve-unknown-fields": True, "type": "object"}
# Value constraints a field declares (metav1.Condition's reason pattern and lengths, say) go into the
# CRD as they are, so the API server refuses what the model refuses.
_CONSTRAINTS = {
    "string": ("minLength", "maxLength", "pattern"),
    "integer": ("minimum", "maximum", "format"),
}


def _condition_column(name: str) -> dict[str, Any]:
    return {"name": name, "type": "string", "jsonPath": f'.status.conditions[?(@.type=="{name}")].status'}


PRINTER_COLUMNS = [
    {"name": "Instance", "type": "string", "jsonPath": ".resource.instanceType"},
    _condition_column("ResourceReady"),
    _condition_column("InferenceReady"),
    _condition_column("JobStarted"),
    _condition_column("WorkspaceSucceeded"),
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


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
        if isinstance(extra, dict) and extra.get("type") == "string":
            out = {"type": "object", "additionalProperties": {"type": "string"}}
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


def build_openapi_schema() -> dict[str, Any]:
    raw = Workspace.model_json_schema(by_alias=True, mode="serialization")
    defs = raw.get("$defs", {})
    props = {key: _structural(sub, defs) for key, sub in raw["properties"].items()}
    # Kubernetes owns these; a CRD may only say they exist.
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}
    return {"type": "object", "properties": props}


def build_crd() -> dict[str, Any]:
    """The `apiextensions.k8s.io/v1` CRD for `workspaces.kaito.sh` as a plain dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
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
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [dict(c) for c in PRINTER_COLUMNS],
                    "schema": {"openAPIV3Schema": build_openapi_schema()},
                    "subresources": {"status": {}},
                }
            ],
        },
    }
