"""The one admission entry point: either version in, the hub out, what to read, one verdict.

Also the one facts factory: a local model too big for its SKU is refused by every caller that uses
`build_catalog_facts` (the bug of four differently assembled facts).
"""

from __future__ import annotations

import copy

import pytest

from kaito.api import admission, conversion, hub
from kaito.api.admission import AdmissionOptions, ClusterReads, admit, admit_workspace, parse_request
from kaito.catalog.facts import build_catalog_facts
from tests.unit.api.factories import inference_ws, tuning_ws
from tests.unit.api.fake_facts import FakeFacts

BETA = {
    "apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "metadata": {"name": "w"},
    "resource": {"instanceType": "Standard_NC12s_v3", "labelSelector": {"matchLabels": {"a": "b"}}},
    "inference": {"preset": {"name": "test-validation"}, "config": "params"},
}


def test_either_version_parses_to_the_same_hub_type():
    alpha = parse_request(inference_ws(), namespace="team")
    beta = parse_request(BETA, namespace="team")
    assert isinstance(alpha.workspace, hub.Workspace) and isinstance(beta.workspace, hub.Workspace)
    assert (alpha.api_version, beta.api_version) == ("kaito.sh/v1alpha1", "kaito.sh/v1beta1")
    assert beta.workspace.namespace == "team"  # the request's namespace fills an empty one
    assert beta.workspace.resource.count == 1 and beta.workspace.inference.preset.access_mode == "public"
    no_sku = copy.deepcopy(BETA)
    del no_sku["resource"]["instanceType"]
    assert parse_request(no_sku).workspace.resource.instance_type is None  # v1beta1: no default
    alpha_no_sku = inference_ws(**{"resource.instanceType": None})
    del alpha_no_sku["resource"]["instanceType"]
    assert parse_request(alpha_no_sku).workspace.resource.instance_type == "Standard_NC12s_v3"  # v1alpha1 default


@pytest.mark.parametrize(("obj", "path"), [
    ({"apiVersion": "kaito.sh/v2", "kind": "Workspace"}, "apiVersion"),
    ({"apiVersion": "kaito.sh/v1beta1", "kind": "Pod"}, "kind"),
    ([1, 2], ""),
    ({**BETA, "resource": {"labelSelector": {}, "gpus": 1}}, "resource.gpus"),
])
def test_what_does_not_parse_is_refused_with_the_field(obj, path):
    verdict = admit(obj, facts=FakeFacts())
    assert not verdict.allowed and verdict.workspace is None
    assert [e.path for e in verdict.errors] == [path]


def test_needs_names_the_configmaps_and_byo_nodes_to_read():
    options = AdmissionOptions(release_namespace="kaito-system")
    needs = parse_request(BETA).needs(options)
    assert [(r.namespace, r.name, r.path) for r in needs.configmaps] == [("default", "params", "inference.config")]
    assert needs.node_labels is None  # nodes are auto-provisioned
    tuning = parse_request(tuning_ws()).needs(options)
    assert [(r.namespace, r.name, r.explicit) for r in tuning.configmaps] == [
        ("kaito-system", "lora-params-template", False)]
    byo = copy.deepcopy(BETA)
    del byo["resource"]["instanceType"]
    byo["resource"]["labelSelector"]["matchLabels"]["kaito.sh/workspace"] = "w"
    assert parse_request(byo).needs(AdmissionOptions(auto_provisioning=False)).node_labels == {"a": "b"}
    unchanged = parse_request(BETA, BETA).needs(options)  # UPDATE with the same ConfigMap name
    assert unchanged.configmaps == () and unchanged.node_labels is None


def test_configmap_reads_decide_between_refusal_warning_and_check():
    facts = FakeFacts()
    absent = admit(BETA, facts=facts, reads=ClusterReads(complete=True))
    assert [e.path for e in absent.errors] == ["inference.config"] and "does not exist" in absent.errors[0].message
    unread = admit(BETA, facts=facts, reads=ClusterReads())
    assert unread.allowed and "inference.config" in [w.path for w in unread.warnings]
    failed = admit(BETA, facts=facts, reads=ClusterReads(complete=True, unreadable={("default", "params"): "503"}))
    assert failed.errors[0].message.startswith("could not read ConfigMap 'params'") and len(failed.errors) == 1
    good = {("default", "params"): {"inference_config.yaml": "vllm:\n  max-model-len: 1024\n"}}
    assert admit(BETA, facts=facts, reads=ClusterReads(configmaps=good, complete=True)).errors == []


def test_deleting_workspaces_are_never_blocked_and_bad_stored_objects_still_update():
    going = copy.deepcopy(BETA)
    going["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    going["resource"]["instanceType"] = "nonsense"
    assert admit(going, facts=FakeFacts()).problems == []
    verdict = admit(BETA, {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "bogus": 1},
                    facts=FakeFacts(), reads=ClusterReads(configmaps={("default", "params"): {}}, complete=True))
    assert any(w.message.startswith("the stored Workspace does not parse") for w in verdict.warnings)


def test_rules_follow_the_version_written():
    # v1alpha1 keeps v0.3.2's full-reference image rule; v1beta1 takes any Docker reference.
    alpha = tuning_ws(**{"tuning.output.image": "out:1"})
    beta = {**conversion.convert_object(tuning_ws(), "kaito.sh/v1beta1")}
    beta["tuning"]["output"]["image"] = "out:1"
    assert [e.path for e in admit(alpha, facts=FakeFacts()).errors] == ["tuning.output.image"]
    assert admit(beta, facts=FakeFacts()).errors == []
    hub_ws = parse_request(beta).workspace
    assert admit_workspace(hub_ws, api_version="kaito.sh/v1alpha1", facts=FakeFacts()).errors != []
    assert admit_workspace(hub_ws, api_version=None, facts=FakeFacts()).errors == []  # storage version's rules


def _local_model(tmp_path, gib: int):
    model = tmp_path / "big-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with open(model / "model.safetensors", "wb") as f:  # sparse: the size is real, the disk is not used
        f.truncate(gib * 1024**3)
    return str(model)


def test_one_facts_factory_sizes_local_models_for_every_caller(tmp_path):
    """The bug of issue 10: `kaito validate` refused this, `kaito render` did not. One factory now."""
    path = _local_model(tmp_path, 40)
    facts = build_catalog_facts()
    alpha = inference_ws(**{"inference.preset.name": path, "resource.instanceType": "Standard_NV36ads_A10_v5"})
    verdict = admit(alpha, facts=facts)
    assert [e.path for e in verdict.errors] == ["resource.instanceType"]
    assert "Insufficient total GPU memory" in verdict.errors[0].message
    beta = conversion.convert_object(alpha, "kaito.sh/v1beta1")
    beta["metadata"]["annotations"] = {"kaito.sh/runtime": "transformers"}
    assert {e.path for e in admit(beta, facts=facts).errors} == {"resource.instanceType"}
    unsized = build_catalog_facts(read_local_sizes=False)
    assert admit(alpha, facts=unsized).allowed  # without sizes only a warning: what the old callers did
    assert admission.Admission(None, None, []).allowed
