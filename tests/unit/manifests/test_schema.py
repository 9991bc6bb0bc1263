"""Every built object is a well-formed Kubernetes object: lightkube's typed models (generated from
the Kubernetes OpenAPI) read it back without dropping a single field, so a misspelled or misplaced
key cannot hide in a builder. NodeClaims are a CRD that lightkube has no model for."""

from __future__ import annotations

import pytest

from kaito.manifests import workspace
from tests.unit.manifests import cases

apps_v1 = pytest.importorskip("lightkube.resources.apps_v1")
batch_v1 = pytest.importorskip("lightkube.resources.batch_v1")
core_v1 = pytest.importorskip("lightkube.resources.core_v1")

MODELS = {
    "Deployment": apps_v1.Deployment,
    "StatefulSet": apps_v1.StatefulSet,
    "ControllerRevision": apps_v1.ControllerRevision,
    "Service": core_v1.Service,
    "ConfigMap": core_v1.ConfigMap,
    "Job": batch_v1.Job,
}


@pytest.mark.parametrize("case", [*cases.CASES, *cases.AWS_CASES])
def test_objects_round_trip_through_the_kubernetes_models(case: str) -> None:
    objects = workspace.build_workspace_objects(cases.workspace(case))
    checked = 0
    for obj in objects:
        model = MODELS.get(obj["kind"])
        if model is None:
            assert obj["kind"] == "NodeClaim"
            continue
        assert model.from_dict(obj).to_dict() == obj, f"{obj['kind']} has fields Kubernetes does not know"
        checked += 1
    assert checked >= 2


def test_the_check_catches_a_misspelled_field() -> None:
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"publishNotReadyAdresses": True}}
    assert MODELS["Service"].from_dict(obj).to_dict() != obj


# karpenter.sh/v1 NodeClaim spec fields (karpenter v1.0 CRD) and requirement operators.
NODECLAIM_SPEC_FIELDS = {"nodeClassRef", "taints", "startupTaints", "requirements", "resources", "expireAfter", "terminationGracePeriod"}
OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}


@pytest.mark.parametrize("case", ["inference-multinode-llama-2-13b", "nodeclaims-aws-count-3", "tuning-urls-to-image"])
def test_nodeclaims_follow_the_karpenter_v1_shape(case: str) -> None:
    settings = workspace.RenderSettings(cloud="aws" if case in cases.AWS_CASES else "azure")
    claims = [o for o in workspace.build_workspace_objects(cases.workspace(case), settings) if o["kind"] == "NodeClaim"]
    assert claims
    for claim in claims:
        assert claim["apiVersion"] == "karpenter.sh/v1"
        assert set(claim["spec"]) <= NODECLAIM_SPEC_FIELDS
        assert set(claim["spec"]["nodeClassRef"]) == {"group", "kind", "name"}  # all three required in v1
        for req in claim["spec"]["requirements"]:
            assert req["operator"] in OPERATORS and all(isinstance(v, str) for v in req["values"])
        assert set(claim["spec"]["resources"]) == {"requests"}
