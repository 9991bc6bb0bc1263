"""The controller's admission re-check and the v1beta1 status it writes (pure: plan and status).

The rules are those of the version the spec was written in (the stamp), ConfigMaps are judged from
what was observed, a gated model without a token is the pending reason, `state` summarises the
conditions and `targetNodeCount` is written once.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from types import MappingProxyType

from kaito.api import labels
from kaito.api.conditions import ConditionReason
from kaito.controller import plan as plan_mod
from kaito.controller import recheck
from kaito.controller import status as st
from kaito.controller.observe import Observed, WorkspaceKey
from kaito.controller.settings import Settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEY = WorkspaceKey("default", "ws")


def stored(preset="phi-4-mini-instruct", version: str | None = None, **sections) -> dict:
    """A Workspace as the controller reads it: the storage version, with the stamp of `version`."""
    meta = {"name": "ws", "namespace": "default", "uid": "u1", "generation": 1}
    if version:
        meta["annotations"] = {labels.ANNOTATION_API_VERSION: version}
    ws = {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "metadata": meta,
          "resource": {"count": 1, "instanceType": "Standard_NC24ads_A100_v4",
                       "labelSelector": {"matchLabels": {"apps": "ws"}}},
          "inference": {"preset": {"name": preset}}}
    ws.update(copy.deepcopy(sections))
    return ws


def plan(raw: dict, configmaps=None, **settings):
    observed = Observed(key=KEY, workspace=raw, configmaps=MappingProxyType(configmaps or {}))
    return plan_mod.plan_workspace(observed, Settings(**settings), NOW)


def conds(p) -> dict:
    return {c["type"]: (c["status"], c["reason"]) for c in (p.status or {}).get("conditions", [])}


def test_the_rules_are_those_of_the_version_the_spec_was_written_in() -> None:
    # phi-2 is deprecated: KAITO v0.3.2 (v1alpha1) still serves it, v0.12 (v1beta1) refuses it.
    assert "InferenceReady" not in conds(plan(stored("phi-2", "kaito.sh/v1alpha1")))
    for version in ("kaito.sh/v1beta1", None):  # no stamp: a cluster without the mutating webhook
        refused = plan(stored("phi-2", version))
        assert conds(refused)["InferenceReady"] == ("False", ConditionReason.VALIDATION_FAILED)
        assert "deprecated" in next(c["message"] for c in refused.status["conditions"]
                                    if c["type"] == "InferenceReady")
        assert refused.status["state"] == "Failed"


def test_inference_config_is_judged_from_the_observed_configmap() -> None:
    raw = stored(inference={"preset": {"name": "phi-4-mini-instruct"}, "config": "params"})
    missing = plan(raw, {("default", "params"): None})
    assert conds(missing)["InferenceReady"] == ("False", ConditionReason.VALIDATION_FAILED)
    assert missing.requeue_after == Settings().pending_requeue_s  # it may be created next: look again
    nested = plan(raw, {("default", "params"): {"inference_config.yaml": "vllm:\n  x: {a: 1}\n"}})
    assert "single value" in str(nested.status["conditions"])
    good = plan(raw, {("default", "params"): {"inference_config.yaml": "vllm:\n  max-model-len: 4096\n"}})
    assert "InferenceReady" not in conds(good) and good.status["state"] == "Pending"


def test_the_default_tuning_template_is_the_controllers_own_copy() -> None:
    raw = stored(inference=None, tuning={
        "preset": {"name": "phi-3-mini-128k-instruct"}, "method": "qlora",
        "input": {"urls": ["https://example.com/d.parquet"]},
        "output": {"image": "registry.example.com/a/b:1", "imagePushSecret": "push"}})
    del raw["inference"]
    p = plan(raw, release_namespace=None)
    assert "JobStarted" not in conds(p), p.status  # no ConfigMap to read, none missing: ours is mounted


def test_a_gated_model_without_a_token_is_the_pending_reason() -> None:
    raw = stored("llama-3.1-8b-instruct")
    checked = recheck.recheck_workspace(plan_mod.conversion.parse_workspace(raw)[0], raw,
                                        Observed(key=KEY, workspace=raw), Settings())
    assert checked.problem is None and "gated" in checked.access_warning
    facts = st.StatusFacts(kind="inference", generation=1,
                           resource=st.ResourceFacts(needed=1, selected=("n",), provisioning=True),
                           workload=st.WorkloadFacts(exists=True, current=True, replicas=1, rolled_out=True),
                           access_warning=checked.access_warning)
    pending = st.compute_status(None, facts, NOW)
    (ready,) = [c for c in pending["conditions"] if c["type"] == "InferenceReady"]
    assert ready["reason"] == ConditionReason.MODEL_ACCESS_SECRET_MISSING and "modelAccessSecret" in ready["message"]
    served = st.compute_status(pending, facts.__class__(**{**facts.__dict__, "workload": st.WorkloadFacts(
        exists=True, current=True, replicas=1, ready_replicas=1, rolled_out=True)}), NOW)
    assert served["state"] == "Ready"  # the weights were there after all
    with_token = stored("llama-3.1-8b-instruct", inference={"preset": {
        "name": "llama-3.1-8b-instruct", "presetOptions": {"modelAccessSecret": "hf"}}})
    assert recheck.recheck_workspace(plan_mod.conversion.parse_workspace(with_token)[0], with_token,
                                     Observed(key=KEY, workspace=with_token), Settings()).access_warning is None


def test_state_follows_the_conditions() -> None:
    res = st.ResourceFacts(needed=1, selected=("n",), provisioning=True)
    waiting = st.WorkloadFacts(exists=True, current=True, replicas=1, rolled_out=True)
    ready = st.WorkloadFacts(exists=True, current=True, replicas=1, ready_replicas=1, rolled_out=True)
    first = st.compute_status(None, st.StatusFacts(kind="inference", generation=1, resource=res, workload=waiting), NOW)
    assert first["state"] == "Pending"
    up = st.compute_status(first, st.StatusFacts(kind="inference", generation=1, resource=res, workload=ready), NOW)
    assert up["state"] == "Ready"
    down = st.compute_status(up, st.StatusFacts(kind="inference", generation=1, resource=res, workload=waiting), NOW)
    assert down["state"] == "NotReady"
    job = st.JobFacts(exists=True, current=True, active=1, ready=1)
    running = st.compute_status(None, st.StatusFacts(kind="tuning", generation=1, resource=res, job=job), NOW)
    assert running["state"] == "Running"
    done = st.JobFacts(exists=True, current=True, succeeded=1)
    assert st.compute_status(running, st.StatusFacts(kind="tuning", generation=1, resource=res, job=done),
                             NOW)["state"] == "Succeeded"
    deleting = st.compute_status(up, st.StatusFacts(kind="inference", generation=1, deleting=True), NOW)
    assert deleting["state"] == "Ready"  # deletion is a condition; the state stays as it was


def test_target_node_count_is_written_once_then_kept() -> None:
    facts = st.StatusFacts(kind="inference", generation=1, resource=st.ResourceFacts(
        needed=1, selected=(), provisioning=True), target_node_count=2)
    first = st.compute_status(None, facts, NOW)
    assert first["targetNodeCount"] == 2
    again = st.compute_status(first, facts.__class__(**{**facts.__dict__, "target_node_count": 5}), NOW)
    assert again["targetNodeCount"] == 2
    assert st.compute_status({"targetNodeCount": 0}, facts, NOW)["targetNodeCount"] == 2


def test_target_node_count_is_the_estimators_for_vllm_and_the_count_otherwise() -> None:
    from kaito.catalog import presets, sizing, skus

    # gpt-oss-120b: ~121 GiB of weights; on 1 × A100 80 GiB vLLM needs several nodes (KAITO v0.12's estimator).
    big = stored("gpt-oss-120b", metadata={"name": "ws", "namespace": "default", "uid": "u1", "generation": 1,
                                           "annotations": {labels.ANNOTATION_RUNTIME: "vllm"}})
    estimate = sizing.estimate_node_count(presets.get_preset("gpt-oss-120b"),
                                          skus.lookup_sku("Standard_NC24ads_A100_v4", "azure"), 2048, 1)
    assert estimate.nodes > 1 and plan(big).status["targetNodeCount"] == estimate.nodes
    assert plan(stored("phi-4-mini-instruct")).status["targetNodeCount"] == 1  # transformers: resource.count
    two = stored("phi-4-mini-instruct")
    two["resource"]["count"] = 3
    assert plan(two).status["targetNodeCount"] == 3
