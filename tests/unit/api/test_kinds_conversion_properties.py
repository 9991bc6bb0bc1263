"""Conversion properties of InferenceSets and RAGEngines, as for Workspaces: wire → hub → wire is the
identity in both versions, and v1alpha1 → v1beta1 → v1alpha1 and v1beta1 → v1alpha1 → v1beta1 lose
nothing (v1beta1-only fields ride in the annotation; RAGEngine storage changes shape on the way).

Objects are generated as JSON-shaped dicts of each version with every field and random values,
parsed as the API server would (defaults applied), and converted through `kaito.api.kinds`, which is
what the conversion webhook runs.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kaito.api import kinds, lossless
from tests.unit.api.test_conversion_properties import (
    ALPHA,
    BETA,
    SETTINGS,
    _opt,
    condition,
    labels,
    metadata,
    names,
    objects,
    selector,
    small_lists,
    text,
    timestamps,
)

WIRE = {(k.kind, v): w for k in kinds.KINDS.values() for v, w in k.versions.items()}


def inference(beta: bool = True) -> st.SearchStrategy:
    options = {"image": text, "imagePullSecrets": small_lists, "modelAccessSecret": text}
    preset = _opt({"name": text}, {"accessMode": st.sampled_from(["public", "private"]),
                                   "presetOptions": _opt({}, options)})
    adapter = _opt({}, {"source": _opt({}, {"name": text, "image": text}), "strength": st.sampled_from(["0.5", "1"])})
    return _opt({}, {"preset": preset, "template": objects, "config": text, "adapters": st.lists(adapter, max_size=2)})


def inferencesets(api_version: str) -> st.SearchStrategy:
    beta = api_version == BETA
    resource = {"instanceType": text}
    metric = {"unit": text}
    if beta:
        resource["partition"] = _opt({"mode": st.sampled_from(["mig", "accelerator"])},
                                     {"profile": text, "count": st.integers(1, 8)})
        metric["config"] = labels
    window = _opt({"schedule": text}, {"duration": st.sampled_from(["4h", "30m", "1h30m"])})
    spec = _opt({"template": _opt({"inference": inference()}, {
        "metadata": _opt({}, {"labels": labels, "annotations": labels, "name": names}),
        "resource": _opt({}, resource)}), "labelSelector": selector}, {
        "replicas": st.integers(0, 9), "nodeCountLimit": st.integers(0, 20),
        "updateStrategy": st.one_of(objects, st.just({"type": "OnDelete"})),
        "autoUpgrade": _opt({}, {"enabled": st.booleans(), "strategy": st.sampled_from(["InPlace", "Surge"]),
                                 "maintenanceWindow": window}),
    })
    status = _opt({}, {
        "replicas": st.integers(0, 9), "readyReplicas": st.integers(0, 9), "selector": text,
        "conditions": st.lists(condition, max_size=2),
        "performance": _opt({}, {"metrics": st.dictionaries(
            st.one_of(names, st.sampled_from(["aggregatedPeakTokensPerMinute", "a.b", "x[1]"])),
            _opt({"description": text, "value": text}, metric), max_size=2)}),
        "autoUpgrade": _opt({}, {"numDriftedWorkspaces": st.integers(0, 5), "lastSuccessfulUpgradeTime": timestamps}),
    })
    return _opt({"apiVersion": st.just(api_version), "kind": st.just("InferenceSet"), "metadata": metadata,
                 "spec": spec}, {"status": status})


def ragengines(api_version: str) -> st.SearchStrategy:
    beta = api_version == BETA
    compute = {"count": st.integers(0, 3), "instanceType": text, "preferredNodes": st.lists(names, max_size=2)}
    spec = {
        "embedding": _opt({}, {"local": _opt({}, {"image": text, "imagePullSecret": text, "modelID": text,
                                                   "modelAccessSecret": text}),
                               "remote": _opt({"url": text}, {"accessSecret": text})}),
        "inferenceService": _opt({"contextWindowSize": st.integers(-5, 100000)}, {"url": text, "accessSecret": text}),
    }
    if beta:
        compute["partition"] = _opt({"mode": st.sampled_from(["mig", "accelerator"])}, {"profile": text})
        spec["storage"] = _opt({}, {
            "persistentVolume": _opt({"persistentVolumeClaim": text}, {"mountPath": text}),  # the CRD requires the claim
            "vectorDB": _opt({"engine": st.sampled_from(["faiss", "qdrant", "milvus"]), "url": text},
                             {"accessSecret": text})})
        spec["guardrails"] = _opt({}, {"enabled": st.booleans(), "configMapRef": _opt({"name": text}, {})})
    else:
        spec["storage"] = _opt({}, {"persistentVolumeClaim": text, "mountPath": text})
        spec["queryServiceName"] = text
        spec["indexServiceName"] = text
    spec["compute"] = _opt({"labelSelector": selector}, compute)
    embedding = spec.pop("embedding")  # the CRD requires it
    return _opt({"apiVersion": st.just(api_version), "kind": st.just("RAGEngine"), "metadata": metadata}, {
        "spec": _opt({"embedding": embedding}, spec),
        "status": _opt({}, {"workerNodes": st.lists(names, max_size=2), "conditions": st.lists(condition, max_size=2)}),
    })


def _wire(data: dict) -> dict:
    """`data` as the API server stores it: parsed by the version's model, defaults applied."""
    return WIRE[(data["kind"], data["apiVersion"])].model.model_validate(data).to_dict()


def _round_trip_within_version(data: dict) -> None:
    wire = WIRE[(data["kind"], data["apiVersion"])]
    parsed = wire.model.model_validate(data)
    assert wire.from_hub(wire.to_hub(parsed)) == parsed
    hub, version = kinds.parse_object(data)
    assert version == data["apiVersion"] and kinds.to_wire(hub, version) == parsed.to_dict()


def _there_and_back(data: dict, there: str, back: str) -> None:
    stored = _wire(data)
    other = kinds.convert_object(stored, there)
    assert other["apiVersion"] == there
    _wire(other)  # a valid object of the other version: the API server's schema takes it
    again = kinds.convert_object(other, back)
    assert again == stored
    assert lossless.ANNOTATION not in (again["metadata"].get("annotations") or {})


@SETTINGS
@given(st.one_of(inferencesets(BETA), inferencesets(ALPHA), ragengines(BETA), ragengines(ALPHA)))
def test_wire_hub_wire_is_identity(data):
    _round_trip_within_version(data)


@SETTINGS
@given(st.one_of(inferencesets(ALPHA), ragengines(ALPHA)))
def test_v1alpha1_to_v1beta1_and_back_is_identity(data):
    _there_and_back(data, BETA, ALPHA)


@SETTINGS
@given(st.one_of(inferencesets(BETA), ragengines(BETA)))
def test_v1beta1_to_v1alpha1_and_back_is_identity(data):
    _there_and_back(data, ALPHA, BETA)


@SETTINGS
@given(st.one_of(inferencesets(BETA), ragengines(BETA)))
def test_a_v1alpha1_client_round_trip_keeps_v1beta1_fields(data):
    """Read as v1alpha1, written back as v1alpha1 (defaults applied again), read as v1beta1."""
    stored = _wire(data)
    seen = kinds.convert_object(stored, ALPHA)
    written = _wire(seen)
    assert kinds.convert_object(written, BETA) == stored


def test_ragengine_storage_changes_shape_between_versions():
    alpha = {"apiVersion": ALPHA, "kind": "RAGEngine", "metadata": {"name": "r"},
             "spec": {"storage": {"persistentVolumeClaim": "c", "mountPath": "/m"}, "queryServiceName": "q",
                      "embedding": {"local": {"modelID": "m"}}}}
    beta = kinds.convert_object(alpha, BETA)
    assert beta["spec"]["storage"] == {"persistentVolume": {"persistentVolumeClaim": "c", "mountPath": "/m"}}
    assert "queryServiceName" not in beta["spec"] and lossless.ANNOTATION in beta["metadata"]["annotations"]
    assert kinds.convert_object(beta, ALPHA) == alpha
