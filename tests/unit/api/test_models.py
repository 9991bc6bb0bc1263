"""The Workspace models: KAITO's JSON names, defaults, round-trips, unknown fields, conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pydantic
import pytest
import yaml

from kaito.api import conditions, labels
from kaito.api.conditions import ConditionReason, ConditionType, set_condition
from kaito.api.documents import validation_errors
from kaito.api.v1alpha1 import AdapterSpec, ResourceSpec, Workspace, to_hub

FULL = """
apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: workspace-falcon-7b
  namespace: team-a
  uid: 3f1c
  generation: 3
  resourceVersion: "1234"
  creationTimestamp: "2024-11-01T10:00:00Z"
  labels: {app: falcon}
  annotations: {kaito.sh/enablelb: "True"}
  finalizers: [workspace.finalizer.kaito.sh]
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: owner, uid: u1, controller: true}
resource:
  count: 2
  instanceType: Standard_NC24ads_A100_v4
  labelSelector:
    matchLabels: {apps: falcon-7b}
    matchExpressions:
    - {key: zone, operator: In, values: [a]}
  preferredNodes: [node-a, node-b]
inference:
  preset:
    name: falcon-7b
    accessMode: public
    presetOptions: {image: "r.io/falcon:1", imagePullSecrets: [s1]}
  adapters:
  - source: {name: adapter-a, image: "r.io/a/b:1", imagePullSecrets: [s]}
    strength: "0.2"
status:
  workerNodes: [node-a]
  conditions:
  - type: ResourceReady
    status: "True"
    observedGeneration: 3
    lastTransitionTime: "2024-11-01T10:05:00Z"
    reason: workspaceResourceStatusSuccess
    message: workspace resource is ready
"""


def test_full_yaml_round_trips_exactly() -> None:
    data = yaml.safe_load(FULL)
    ws = Workspace.from_dict(data)
    assert ws.resource is not None and ws.resource.instance_type == "Standard_NC24ads_A100_v4"
    assert ws.resource.label_selector.match_labels == {"apps": "falcon-7b"}
    assert ws.inference.adapters[0].source.name == "adapter-a"
    assert ws.status.worker_nodes == ["node-a"]
    assert ws.status.conditions[0].type == ConditionType.RESOURCE_READY
    out = ws.to_dict()
    # PyYAML reads unquoted timestamps as datetimes; everything else must be byte-for-byte the same.
    assert yaml.safe_load(yaml.safe_dump(out)) == data
    assert Workspace.from_dict(yaml.safe_load(yaml.safe_dump(out))) == ws


def test_no_spec_wrapper_and_camel_case_names() -> None:
    out = Workspace.from_dict(yaml.safe_load(FULL)).to_dict()
    assert "spec" not in out
    assert {"resource", "inference", "status"} <= set(out)
    assert "instanceType" in out["resource"] and "labelSelector" in out["resource"]
    assert "presetOptions" in out["inference"]["preset"]


def test_defaults_applied_and_explicit_values_kept() -> None:
    ws = Workspace.from_dict(
        {
            "metadata": {"name": "w"},
            "resource": {"labelSelector": {"matchLabels": {"a": "b"}}},
            "inference": {
                "preset": {"name": "phi-2"},
                "adapters": [{"source": {"name": "x", "image": "r/a:1"}}],
            },
        }
    )
    assert ws.resource.count == 1
    assert ws.resource.instance_type == "Standard_NC12s_v3"
    assert ws.inference.preset.access_mode == "public"
    assert ws.inference.adapters[0].strength == "1.0"
    explicit = Workspace.from_dict(yaml.safe_load(FULL))
    assert explicit.resource.count == 2 and explicit.inference.adapters[0].strength == "0.2"


def test_to_hub_fills_v1alpha1_defaults_for_explicit_nones_without_mutating() -> None:
    ws = Workspace(
        metadata={"name": "w"},
        resource=ResourceSpec(count=None, instance_type=None, label_selector={"matchLabels": {"a": "b"}}),
        inference={"preset": {"name": "phi-2", "accessMode": None}, "adapters": [AdapterSpec(strength=None)]},
    )
    out = to_hub(ws)
    assert (out.resource.count, out.resource.instance_type) == (1, "Standard_NC12s_v3")
    assert out.inference.preset.access_mode == "public"
    assert out.inference.adapters[0].strength == "1.0"
    assert ws.resource.count is None and ws.inference.adapters[0].strength is None


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"spec": {}}, "spec"),
        ({"resource": {"labelSelector": {}, "gpus": 2}}, "resource.gpus"),
        ({"inference": {"preset": {"name": "x", "image": "y"}}}, "inference.preset.image"),
        ({"inference": {"adapters": [{"source": {"nme": "a"}}]}}, "inference.adapters[0].source.nme"),
        ({"metadata": {"name": "w", "colour": "red"}}, "metadata.colour"),
        (
            {
                "status": {
                    "conditions": [
                        {"type": "A", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z", "x": 1}
                    ]
                }
            },
            "status.conditions[0].x",
        ),
    ],
)
def test_unknown_fields_rejected_with_path(patch: dict, path: str) -> None:
    data = {"metadata": {"name": "w"}, "resource": {"labelSelector": {}}, **patch}
    with pytest.raises(pydantic.ValidationError) as info:
        Workspace.from_dict(data)
    errors = validation_errors(info.value)
    assert any(e.path == path and e.message == "unknown field" for e in errors), errors


def test_api_version_and_kind_checked() -> None:
    with pytest.raises(pydantic.ValidationError):
        Workspace.from_dict({"apiVersion": "kaito.sh/v1", "metadata": {"name": "w"}})
    with pytest.raises(pydantic.ValidationError):
        Workspace.from_dict({"kind": "RAGEngine", "metadata": {"name": "w"}})


def test_wrong_types_rejected() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Workspace.from_dict(
            {
                "resource": {"count": "two", "labelSelector": {}},
                "inference": {"adapters": [{"strength": 0.5}]},
            }
        )
    paths = {e.path for e in validation_errors(info.value)}
    assert {"resource.count", "inference.adapters[0].strength"} <= paths


def test_snake_case_construction() -> None:
    ws = Workspace(
        metadata={"name": "w"},
        resource=ResourceSpec(instance_type="Standard_NC6s_v3", label_selector={"match_labels": {"a": "b"}}),
    )
    assert ws.to_dict()["resource"] == {
        "count": 1,
        "instanceType": "Standard_NC6s_v3",
        "labelSelector": {"matchLabels": {"a": "b"}},
    }


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=5)
    first = set_condition(
        [], ConditionType.RESOURCE_READY, "False", ConditionReason.RESOURCE_STATUS_FAILED, "no nodes", 1, t0
    )
    same = set_condition(
        first,
        ConditionType.RESOURCE_READY,
        "False",
        ConditionReason.RESOURCE_STATUS_FAILED,
        "still none",
        2,
        t1,
    )
    assert (
        same[0].last_transition_time == t0
        and same[0].message == "still none"
        and same[0].observed_generation == 2
    )
    flipped = set_condition(
        same,
        ConditionType.RESOURCE_READY,
        "True",
        ConditionReason.RESOURCE_STATUS_SUCCESS,
        conditions.MESSAGE_RESOURCE_READY,
        2,
        t1,
    )
    assert flipped[0].last_transition_time == t1 and flipped[0].status == "True"
    assert first[0].message == "no nodes"  # input untouched
    both = set_condition(flipped, ConditionType.INFERENCE_READY, "Unknown", "Pending", "", 2, t1)
    assert [c.type for c in both] == ["ResourceReady", "InferenceReady"]
    assert conditions.find_condition(both, "InferenceReady").status == "Unknown"


def test_condition_and_label_constants_match_kaito() -> None:
    assert ConditionType.WORKSPACE_SUCCEEDED == "WorkspaceSucceeded"
    assert ConditionReason.RESOURCE_STATUS_SUCCESS == "workspaceResourceStatusSuccess"
    assert ConditionReason.INFERENCE_STATUS_SUCCESS == "WorkspaceInferenceStatusSuccess"
    assert ConditionReason.TUNING_JOB_STATUS_STARTED == "WorkspaceTuningJobStatusStarted"
    assert labels.LABEL_WORKSPACE_NAME == "kaito.sh/workspace"
    assert labels.FINALIZER_WORKSPACE == "workspace.finalizer.kaito.sh"
    assert labels.ANNOTATION_REVISION == "workspace.kaito.io/revision"
    assert "karpenter.kaito.sh/workspace-name" in labels.RESERVED_SELECTOR_KEYS


def test_v012_condition_types_reasons_and_states() -> None:
    assert {t.value for t in ConditionType} >= {
        "NodeClaimReady", "NodesReady", "ResourceReady", "ModelMirrorReady", "InferenceReady", "BenchmarkCompleted",
        "JobStarted", "WorkspaceSucceeded", "WorkspaceDeleting", "ScalingDownCompleted"}
    assert {r.value for r in ConditionReason} >= {
        "NodeClaimsReady", "NodesReady", "NodeNotReady", "NodePluginsNotReady", "ModelMirrorNotReady",
        "WorkspaceInferenceStatusPending", "ImagePullError", "ContainerCrashLoopBackOff", "ContainerOOMKilled",
        "ContainerStartError", "PodEvicted", "NodeDiskPressure", "NodeMemoryPressure", "Unschedulable",
        "SASTokenFetchFailed", "ModelMirrorCreateFailed", "BenchmarkCompleted", "BenchmarkFailed"}
    assert [s.value for s in conditions.WorkspaceState] == ["Pending", "Ready", "NotReady", "Running", "Succeeded",
                                                            "Failed"]
    # Every reason fits metav1's pattern, so the API server never refuses a status we write.
    assert all(conditions.compute_condition_reason(r) == r for r in ConditionReason)
