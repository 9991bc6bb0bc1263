"""InferenceSet admission (kaito-v0.12.md §3.2) through the one entry point, `kaito.api.admission.admit`.

The first cases are KAITO v0.12's own (`api/v1beta1/inferenceset_validation_test.go`: instanceType
by node provisioner, maintenance window, partition immutability); the rest are ours, above all the
child Workspace judged by the full Workspace rules with each error placed under `spec.template…`
(or `spec.labelSelector`, or the set's own annotations) — every case names the field it expects.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from kaito.api import inferenceset
from kaito.api.admission import AdmissionOptions, ClusterReads, admit, parse_request
from tests.unit.api.factories import DELETE, set_path
from tests.unit.api.fake_facts import FakeFacts

BASE = {
    "apiVersion": "kaito.sh/v1beta1",
    "kind": "InferenceSet",
    "metadata": {"name": "phi", "namespace": "default"},
    "spec": {
        "replicas": 2,
        "labelSelector": {"matchLabels": {"apps": "phi"}},
        "template": {
            "metadata": {"labels": {"team": "a"}, "annotations": {"kaito.sh/runtime": "vllm"}},
            "resource": {"instanceType": "Standard_NC24ads_A100_v4"},
            "inference": {"preset": {"name": "test-validation"}},
        },
    },
}
BYO = AdmissionOptions(auto_provisioning=False)
BYO_MIG = AdmissionOptions(auto_provisioning=False, enable_mig=True, enable_accelerator=True)


def make(**overrides: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for path, value in overrides.items():
        set_path(doc, path.replace("__", "."), value if value is DELETE else copy.deepcopy(value))
    return doc


@dataclass
class Case:
    name: str
    obj: dict[str, Any]
    errors: tuple[str, ...] = ()  # the error paths expected (exactly)
    options: AdmissionOptions = field(default_factory=AdmissionOptions)
    warnings: tuple[str, ...] = ()  # warning paths that must be among the warnings
    message: str = ""  # a phrase the first error must contain
    old: dict[str, Any] | None = None


def _no_sku() -> dict[str, Any]:
    return make(**{"spec.template.resource": {}})


CASES = [
    Case("valid set, auto-provisioned", make()),
    # KAITO's TestInferenceSet_validateInstanceType (the unknown-provisioner rows have no counterpart:
    # our operator always knows whether it provisions nodes).
    Case("byo with empty instanceType", _no_sku(), options=BYO),
    Case("byo with instanceType set", make(), ("spec.template.resource.instanceType",), BYO, message="must be empty"),
    Case("karpenter with instanceType set", make()),
    Case("karpenter with empty instanceType", _no_sku(), ("spec.template.resource.instanceType",),
         message="instanceType is required"),
    # KAITO's TestValidateInferenceSetMaintenanceWindow and its window rules.
    Case("valid window", make(**{"spec.autoUpgrade": {"enabled": True, "maintenanceWindow": {"schedule": "0 2 * * 6"}}})),
    Case("descriptor window", make(**{"spec.autoUpgrade.maintenanceWindow": {"schedule": "@weekly", "duration": "90m"}})),
    Case("every window", make(**{"spec.autoUpgrade.maintenanceWindow": {"schedule": "@every 1h30m"}})),
    Case("empty schedule", make(**{"spec.autoUpgrade.maintenanceWindow": {"schedule": ""}}),
         ("spec.autoUpgrade.maintenanceWindow.schedule",), message="needs a schedule"),
    Case("bad cron", make(**{"spec.autoUpgrade.maintenanceWindow": {"schedule": "61 2 * * 6"}}),
         ("spec.autoUpgrade.maintenanceWindow.schedule",), message="invalid cron schedule"),
    Case("six cron fields", make(**{"spec.autoUpgrade.maintenanceWindow": {"schedule": "0 0 2 * * 6"}}),
         ("spec.autoUpgrade.maintenanceWindow.schedule",), message="expected 5 fields"),
    Case("zero duration", make(**{"spec.autoUpgrade.maintenanceWindow": {"schedule": "0 2 * * 6", "duration": "0s"}}),
         ("spec.autoUpgrade.maintenanceWindow.duration",), message="positive duration"),
    Case("negative duration", make(**{"spec.autoUpgrade.maintenanceWindow": {"schedule": "0 2 * * 6",
                                                                             "duration": "-1h"}}),
         ("spec.autoUpgrade.maintenanceWindow.duration",)),
    Case("not a duration", make(**{"spec.autoUpgrade.maintenanceWindow": {"schedule": "0 2 * * 6", "duration": "4 hours"}}),
         ("spec.autoUpgrade.maintenanceWindow.duration",), message="not a duration"),
    Case("missing schedule field", make(**{"spec.autoUpgrade.maintenanceWindow": {"duration": "4h"}}),
         ("spec.autoUpgrade.maintenanceWindow.schedule",), message="required"),
    Case("unknown strategy", make(**{"spec.autoUpgrade": {"strategy": "BlueGreen"}}), ("spec.autoUpgrade.strategy",)),
    # The set's own fields.
    Case("negative replicas", make(**{"spec.replicas": -1}), ("spec.replicas",), message="must not be negative"),
    Case("scale to zero", make(**{"spec.replicas": 0})),
    Case("negative node count limit", make(**{"spec.nodeCountLimit": -2}), ("spec.nodeCountLimit",)),
    Case("uppercase name", make(**{"metadata.name": "Phi"}), ("metadata.name",), message="DNS-1123"),
    Case("no name", make(**{"metadata.name": DELETE}), ("metadata.name",)),
    Case("missing selector", make(**{"spec.labelSelector": DELETE}), ("spec.labelSelector",), message="required"),
    Case("missing inference", make(**{"spec.template.inference": DELETE}), ("spec.template.inference",)),
    Case("unknown field", make(**{"spec.template.resource.count": 3}), ("spec.template.resource.count",),
         message="unknown field"),
    Case("labels not strings", make(**{"spec.template.metadata.labels": {"team": 7}}), ("spec.template.metadata.labels",)),
    Case("created-by in template", make(**{"spec.template.metadata.labels": {inferenceset.LABEL_CREATED_BY: "other"}}),
         warnings=("spec.template.metadata.labels",)),
    # The child Workspace under the full Workspace rules, errors placed where the user wrote them.
    Case("template: unknown preset", make(**{"spec.template.inference.preset.name": "gpt-17"}),
         ("spec.template.inference.preset.name",), message="gpt-17"),
    Case("template: neither preset nor template", make(**{"spec.template.inference": {}}),
         ("spec.template.inference",)),
    Case("template: bad adapter name", make(**{"spec.template.inference.adapters": [
        {"source": {"name": "Bad_Name", "image": "registry.io/a/b:1"}}]}),
         ("spec.template.inference.adapters[0].source.name",)),
    Case("template: unknown SKU", make(**{"spec.template.resource.instanceType": "Gpu_Unknown"}),
         ("spec.template.resource.instanceType",)),
    Case("template: bad performance mode", make(**{"spec.template.metadata.annotations": {
        "kaito.sh/performance-mode": "fast"}}), ("spec.template.metadata.annotations[kaito.sh/performance-mode]",)),
    Case("set: unknown runtime passed down", make(**{"metadata.annotations": {"kaito.sh/runtime": "tpu"},
                                                     "spec.template.metadata.annotations": {}}),
         warnings=("metadata.annotations[kaito.sh/runtime]",)),
    Case("selector: only reserved keys", make(**{"spec.labelSelector": {"matchLabels": {"kaito.sh/workspace": "x"}}}),
         ("spec.labelSelector.matchLabels",)),
    Case("selector: Exists expression", make(**{"spec.labelSelector": {"matchExpressions": [
        {"key": "apps", "operator": "Exists"}]}}), ("spec.labelSelector.matchExpressions[0]",)),
    Case("template: partition without the gate", make(**{"spec.template.resource": {"partition": {
        "mode": "mig", "profile": "1g.10gb"}}}), ("spec.template.resource.partition",), BYO),
    Case("template: partition on BYO with the gate", make(**{"spec.template.resource": {"partition": {
        "mode": "mig", "profile": "1g.10gb"}}}), options=BYO_MIG),
    # KAITO's TestInferenceSetMIGImmutable / TestInferenceSetAcceleratorImmutable, on UPDATE.
    Case("mig unchanged", make(**{"spec.template.resource": {"partition": {"mode": "mig", "profile": "1g.10gb"}}}),
         options=BYO_MIG, old=make(**{"spec.template.resource": {"partition": {"mode": "mig", "profile": "1g.10gb"}}})),
    Case("mig profile changed", make(**{"spec.template.resource": {"partition": {"mode": "mig", "profile": "2g.20gb"}}}),
         ("spec.template.resource.partition",), BYO_MIG, message="immutable",
         old=make(**{"spec.template.resource": {"partition": {"mode": "mig", "profile": "1g.10gb"}}})),
    Case("mig added", make(**{"spec.template.resource": {"partition": {"mode": "mig", "profile": "1g.10gb"}}}),
         ("spec.template.resource.partition",), BYO_MIG, message="immutable", old=_no_sku()),
    Case("accelerator count changed", make(**{"spec.template.resource": {"partition": {"mode": "accelerator",
                                                                                       "count": 4}}}),
         ("spec.template.resource.partition",), BYO_MIG,
         old=make(**{"spec.template.resource": {"partition": {"mode": "accelerator", "count": 2}}})),
    Case("update re-checks the child", make(**{"spec.template.inference.preset.name": "gpt-17"}),
         ("spec.template.inference.preset.name",), old=make()),
    Case("update re-checks the window", make(**{"spec.autoUpgrade.maintenanceWindow": {"schedule": "nope"}}),
         ("spec.autoUpgrade.maintenanceWindow.schedule",), old=make()),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_inferenceset_rule(case: Case) -> None:
    verdict = admit(case.obj, case.old, facts=FakeFacts(), options=case.options)
    assert verdict.kind == "InferenceSet"
    assert sorted({e.path for e in verdict.errors}) == sorted(case.errors), [str(e) for e in verdict.problems]
    for path in case.warnings:
        assert path in {w.path for w in verdict.warnings}, [str(w) for w in verdict.warnings]
    if case.message:
        assert case.message in verdict.errors[0].message
    if not case.errors:
        assert isinstance(verdict.obj, inferenceset.InferenceSet) and verdict.allowed


def test_either_version_is_admitted_and_defaulted():
    alpha = make(apiVersion="kaito.sh/v1alpha1", **{"spec.replicas": DELETE})
    for obj in (alpha, make(**{"spec.replicas": DELETE})):
        verdict = admit(obj, facts=FakeFacts())
        assert verdict.allowed, verdict.problems
        assert verdict.obj.spec.replicas == 1 and verdict.obj.spec.update_strategy["type"] == "RollingUpdate"
        assert verdict.api_version == obj["apiVersion"]
    bad_alpha = make(apiVersion="kaito.sh/v1alpha1", **{"spec.template.resource": {"partition": {"mode": "mig"}}})
    assert [e.path for e in admit(bad_alpha, facts=FakeFacts()).errors] == ["spec.template.resource.partition"]


def test_the_child_is_read_for_what_it_needs():
    """An InferenceSet's child names ConfigMaps as a Workspace does: the webhook reads them."""
    obj = make(**{"spec.template.inference.config": "params"})
    needs = parse_request(obj).needs(AdmissionOptions())
    assert [(r.namespace, r.name) for r in needs.configmaps] == [("default", "params")]
    assert parse_request(_no_sku()).needs(BYO).node_labels == {"apps": "phi"}  # BYO: the selected nodes
    missing = admit(obj, facts=FakeFacts(), reads=ClusterReads(complete=True))
    assert [e.path for e in missing.errors] == ["spec.template.inference.config"]
    present = ClusterReads(configmaps={("default", "params"): {"inference_config.yaml": "vllm: {}\n"}}, complete=True)
    assert admit(obj, facts=FakeFacts(), reads=present).allowed


def test_a_set_being_deleted_is_never_blocked():
    obj = make(**{"metadata.deletionTimestamp": "2025-01-01T00:00:00Z", "spec.replicas": -3})
    assert admit(obj, facts=FakeFacts()).allowed


def test_the_child_workspace_is_kaitos():
    obj, _ = parse_request(make(**{"metadata.labels": {inferenceset.LABEL_INFERENCE_ROLE: "prefill", "x": "y"},
                                   "metadata.annotations": {"kaito.sh/disable-benchmark": "true"},
                                   "metadata.uid": "u-1"})).obj, None
    child = inferenceset.build_child_workspace(obj)
    assert child.metadata.generate_name == "phi-" and child.metadata.name is None
    assert child.metadata.labels == {"team": "a", inferenceset.LABEL_INFERENCE_ROLE: "prefill",
                                     inferenceset.LABEL_CREATED_BY: "phi"}
    assert child.metadata.annotations == {"kaito.sh/runtime": "vllm", "kaito.sh/disable-benchmark": "true"}
    (ref,) = child.metadata.owner_references
    assert (ref.kind, ref.name, ref.uid, ref.controller, ref.api_version) == ("InferenceSet", "phi", "u-1", True,
                                                                              "kaito.sh/v1beta1")
    assert child.resource.label_selector.match_labels == {"apps": "phi"} and child.resource.count == 1
    assert child.resource.instance_type == "Standard_NC24ads_A100_v4"
    assert inferenceset.build_child_workspace(obj, auto_provisioning=False).resource.instance_type is None
    assert inferenceset.compute_selector(obj) == "inferenceset.kaito.sh/created-by=phi"
