"""Properties of conversion: wire → hub → wire is the identity for both versions, and so are
v1alpha1 → v1beta1 → v1alpha1 and v1beta1 → v1alpha1 → v1beta1 (v1beta1-only fields included).

Workspaces are generated as JSON-shaped dicts of each version (every field, random values), parsed
as the API server would (defaults applied), and converted through `kaito.api.conversion`, which is
also what the conversion webhook runs.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaito.api import conversion, lossless, v1alpha1, v1beta1

ALPHA, BETA = "kaito.sh/v1alpha1", "kaito.sh/v1beta1"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
text = st.text(max_size=12)
small_lists = st.lists(text, max_size=2)
labels = st.dictionaries(names, text, max_size=3)
annotation_keys = st.one_of(names, st.sampled_from(["kaito.sh/runtime", "kaito.sh/enablelb", "a.b/c"]))
annotations = st.one_of(st.none(), st.dictionaries(annotation_keys, text, min_size=1, max_size=3))
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), text)
json_tree = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=2),
                                                            st.dictionaries(names, inner, max_size=2)), max_leaves=6)
objects = st.dictionaries(names, json_tree, max_size=3)
timestamps = st.sampled_from(["2024-01-01T00:00:00Z", "2025-06-30T12:34:56Z"])


def _opt(required: dict, optional: dict) -> st.SearchStrategy:
    return st.fixed_dictionaries(required, optional=optional)


selector = _opt({}, {
    "matchLabels": labels,
    "matchExpressions": st.lists(_opt({"key": names, "operator": st.sampled_from(["In", "NotIn", "Exists"])},
                                      {"values": small_lists}), max_size=2),
})
metadata = _opt({"name": names}, {
    "namespace": names, "labels": labels, "annotations": annotations, "uid": names, "resourceVersion": names,
    "generation": st.integers(0, 9), "creationTimestamp": timestamps, "finalizers": st.lists(names, max_size=2),
})
data_source = _opt({}, {"name": text, "urls": small_lists, "volumeSource": objects, "image": text,
                        "imagePullSecrets": small_lists})
data_destination = _opt({}, {"volumeSource": objects, "image": text, "imagePushSecret": text})
adapter = _opt({}, {"source": data_source, "strength": st.sampled_from(["0.5", "1.0", "x"])})
condition = _opt({
    "type": st.sampled_from(["ResourceReady", "InferenceReady", "WorkspaceSucceeded"]),
    "status": st.sampled_from(["True", "False", "Unknown"]),
    "lastTransitionTime": timestamps,
    "reason": st.sampled_from(["workspaceSucceeded", "WorkspaceInferenceStatusPending"]),
    "message": text,
}, {"observedGeneration": st.integers(0, 9)})


def workspaces(api_version: str) -> st.SearchStrategy:
    beta = api_version == BETA
    options = {"image": text, "imagePullSecrets": small_lists}
    if beta:
        options["modelAccessSecret"] = text
    preset = _opt({"name": text}, {"accessMode": st.sampled_from(["public", "private"]),
                                   "presetOptions": _opt({}, options)})
    resource = {"count": st.integers(0, 8), "instanceType": text, "preferredNodes": st.lists(names, max_size=2)}
    status = {"workerNodes": st.lists(names, max_size=2), "conditions": st.lists(condition, max_size=2)}
    if beta:
        resource["partition"] = _opt({"mode": st.sampled_from(["mig", "accelerator"])},
                                     {"profile": text, "count": st.integers(1, 8)})
        metric = _opt({"description": text, "value": text}, {"unit": text, "config": labels})
        status |= {"state": st.sampled_from(["Pending", "Ready", "Failed"]), "targetNodeCount": st.integers(0, 50),
                   "performance": _opt({}, {"metrics": st.dictionaries(names, metric, max_size=2)})}
    inference = _opt({}, {"preset": preset, "template": objects, "config": text,
                          "adapters": st.lists(adapter, max_size=3)})
    tuning = _opt({}, {"preset": preset, "method": text, "config": text, "input": data_source,
                       "output": data_destination})
    return _opt({"apiVersion": st.just(api_version), "kind": st.just("Workspace"), "metadata": metadata}, {
        "resource": _opt({"labelSelector": selector}, resource),
        "inference": inference,
        "tuning": tuning,
        "status": _opt({}, status),
    })


@SETTINGS
@given(workspaces(BETA))
def test_v1beta1_wire_hub_wire_is_identity(data):
    wire = v1beta1.Workspace.from_dict(data)
    assert v1beta1.from_hub(v1beta1.to_hub(wire)) == wire
    hub, version = conversion.parse_workspace(data)
    assert version == BETA and conversion.to_wire(hub, BETA) == wire.to_dict()


@SETTINGS
@given(workspaces(ALPHA))
def test_v1alpha1_wire_hub_wire_is_identity(data):
    wire = v1alpha1.Workspace.from_dict(data)
    assert v1alpha1.from_hub(v1alpha1.to_hub(wire)) == wire
    hub, version = conversion.parse_workspace(data)
    assert version == ALPHA and conversion.to_wire(hub, ALPHA) == wire.to_dict()


@SETTINGS
@given(workspaces(ALPHA))
def test_v1alpha1_to_v1beta1_and_back_is_identity(data):
    alpha = v1alpha1.Workspace.from_dict(data).to_dict()
    beta = conversion.convert_object(alpha, BETA)
    assert beta["apiVersion"] == BETA
    assert lossless.ANNOTATION not in (beta["metadata"].get("annotations") or {})
    assert conversion.convert_object(beta, ALPHA) == alpha


@SETTINGS
@given(workspaces(BETA))
def test_v1beta1_to_v1alpha1_and_back_is_identity(data):
    beta = v1beta1.Workspace.from_dict(data).to_dict()
    alpha = conversion.convert_object(beta, ALPHA)
    assert alpha["apiVersion"] == ALPHA
    v1alpha1.Workspace.from_dict(alpha)  # a valid v1alpha1 object: the API server's schema would take it
    back = conversion.convert_object(alpha, BETA)
    assert back == beta
    assert lossless.ANNOTATION not in (back["metadata"].get("annotations") or {})


@SETTINGS
@given(workspaces(BETA))
def test_a_v1alpha1_client_round_trip_keeps_v1beta1_fields(data):
    """Read as v1alpha1, written back as v1alpha1 (the API server defaults it again), read as v1beta1."""
    beta = v1beta1.Workspace.from_dict(data)
    alpha_seen = v1alpha1.from_hub(v1beta1.to_hub(beta)).to_dict()
    written = v1alpha1.Workspace.from_dict(alpha_seen)  # v1alpha1 defaults fill instanceType, strength
    assert v1beta1.from_hub(v1alpha1.to_hub(written)) == beta
