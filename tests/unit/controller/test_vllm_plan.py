"""The controller's plan for vLLM Workspaces (pure): KAITO v0.12's objects, their node count, their status.

Golden files `tests/golden/vllm/controller-*.yaml` hold what the plan applies for v1beta1 Workspaces
(one GPU, several GPUs on one node, several nodes, adapters) once their nodes are Ready — the
controller's whole path (re-check, sizing, node selection, builders), beside the builders' own
goldens. Regenerate with `UPDATE_GOLDEN=1`.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from kaito.api import labels
from kaito.api.conditions import ConditionReason
from kaito.cluster import protocol
from kaito.controller import plan as plan_mod
from kaito.controller.observe import Observed, WorkspaceKey
from kaito.controller.settings import Settings
from kaito.manifests import images
from kaito.manifests.workspace import dump_yaml
from tests.support.kubelet import node_object

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "vllm"
SETTINGS = Settings(image_registry="registry.test/kaito", image_tag="0.1.0")
PARAMS = {"inference_config.yaml": "vllm:\n  max-model-len: 4096\n  enable-prefix-caching: true\n"}


def workspace(name: str, model: str, sku: str, *, annotations=None, **inference) -> dict:
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 1}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "metadata": meta,
            "resource": {"instanceType": sku, "labelSelector": {"matchLabels": {"apps": name}}},
            "inference": {"preset": {"name": model}, **inference}}


CASES = {
    # One A100: TP 1; the runtime-parameter ConfigMap and HF_TOKEN from the model-access Secret.
    "controller-single-gpu": workspace(
        "phi-4-mini", "phi-4-mini-instruct", "Standard_NC24ads_A100_v4", config="phi-4-mini-params",
        preset={"name": "phi-4-mini-instruct", "presetOptions": {"modelAccessSecret": "hf-token"}}),
    # Four A100s on one node for a 78 GiB model: tensor parallelism over the node's GPUs.
    "controller-multi-gpu": workspace("falcon-40b", "falcon-40b-instruct", "Standard_NC96ads_A100_v4"),
    # Two A10s per node are too small for a 61 GiB model alone: the estimator's two nodes, TP 2 × PP 2
    # over Ray, and KAITO's LoadBalancer annotation.
    "controller-multi-node": workspace("qwen-coder", "qwen2.5-coder-32b-instruct", "Standard_NV72ads_A10_v5",
                                       annotations={labels.ANNOTATION_ENABLE_LB: "True"}),
    # Adapters from an image and a volume, served as LoRA modules; KAITO's throughput mode.
    "controller-adapters": workspace(
        "phi-3-adapters", "phi-3-mini-4k-instruct", "Standard_NC24ads_A100_v4",
        annotations={labels.ANNOTATION_PERFORMANCE_MODE: "throughput"},
        adapters=[{"source": {"name": "phi-3-adapter", "image": "myregistry.azurecr.io/adapters/phi-3-adapter:0.0.1",
                              "imagePullSecrets": ["adapter-secret"]}},
                  {"source": {"name": "tuned-dolly",
                              "volumeSource": {"persistentVolumeClaim": {"claimName": "adapters-pvc"}}}}]),
}


def ready_nodes(ws: dict, count: int) -> tuple[dict, ...]:
    out = []
    for i in range(count):
        node = node_object(f"{ws['metadata']['name']}-node-{i}", ws["resource"]["labelSelector"]["matchLabels"],
                           instance_type=ws["resource"]["instanceType"], gpu=None)
        node["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
        out.append(node)
    return tuple(out)


def observed(ws: dict, *, nodes: int = 0, configmaps=None, owned=(), pods=()) -> Observed:
    key = WorkspaceKey("default", ws["metadata"]["name"])
    found = {("default", ws["inference"]["config"]): PARAMS} if ws["inference"].get("config") else {}
    found.update(configmaps or {})
    return Observed(key=key, workspace=ws, nodes=ready_nodes(ws, nodes), configmaps=MappingProxyType(found),
                    owned=MappingProxyType({(protocol.kind_of(o).key, o["metadata"]["name"]): o for o in owned}),
                    pods=tuple(pods))


def plan(obs: Observed, settings: Settings = SETTINGS) -> plan_mod.Plan:
    return plan_mod.plan_workspace(obs, settings, NOW)


def planned(ws: dict) -> plan_mod.Plan:
    """The plan once the nodes the first reconcile asked for are Ready (its targetNodeCount kept)."""
    first = plan(observed(ws))
    ws = {**ws, "status": first.status}
    return plan(observed(ws, nodes=first.status["targetNodeCount"]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_controller_renders_kaito_v012_vllm_objects(case: str) -> None:
    result = planned(CASES[case])
    text = dump_yaml(list(result.apply))
    path = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")
    assert [o["kind"] for o in result.apply] == ["Service", "Service", "StatefulSet"]


def test_the_statefulset_and_the_nodeclaims_follow_target_node_count() -> None:
    ws = CASES["controller-multi-node"]
    first = plan(observed(ws))
    assert first.status["targetNodeCount"] == 2 and len(first.nodeclaims) == 2  # not resource.count's 1
    sts = planned(ws).apply[-1]
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert sts["spec"]["replicas"] == 2 and "--pipeline-parallel-size=2" in args and "--tensor-parallel-size=2" in args
    assert planned(CASES["controller-multi-gpu"]).apply[-1]["spec"]["replicas"] == 1


def test_a_v1alpha1_workspace_keeps_its_deployment() -> None:
    ws = copy.deepcopy(CASES["controller-single-gpu"])
    ws["metadata"]["annotations"] = {labels.ANNOTATION_API_VERSION: "kaito.sh/v1alpha1"}
    kinds = [o["kind"] for o in planned(ws).apply]
    assert kinds == ["Service", "Deployment"]


def test_switching_to_vllm_deletes_the_legacy_deployment() -> None:
    ws = CASES["controller-single-gpu"]
    legacy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "phi-4-mini", "namespace": "default"}}
    first = plan(observed(ws))
    result = plan(observed({**ws, "status": first.status}, nodes=1, owned=[legacy]))
    assert [(d.kind.kind, d.name) for d in result.delete] == [("Deployment", "phi-4-mini")]
    assert result.apply[-1]["kind"] == "StatefulSet"


def test_without_vllm_a_v1beta1_workspace_runs_transformers_and_says_why() -> None:
    ws = CASES["controller-single-gpu"]
    result = planned_with(ws, Settings(vllm_available=False))
    assert [o["kind"] for o in result.apply] == ["Service", "Deployment"]
    assert "--engine=transformers" in result.apply[-1]["spec"]["template"]["spec"]["containers"][0]["args"]
    (why,) = [m for _, reason, m in result.events if reason == plan_mod.EVENT_RUNTIME_FALLBACK]
    assert "vLLM is not installed" in why and "--vllm-python" in why


def planned_with(ws: dict, settings: Settings) -> plan_mod.Plan:
    first = plan(observed(ws), settings)
    return plan(observed({**ws, "status": first.status}, nodes=first.status["targetNodeCount"]), settings)


def test_asking_for_vllm_where_none_is_installed_is_a_condition_not_a_pod() -> None:
    ws = copy.deepcopy(CASES["controller-single-gpu"])
    ws["metadata"]["annotations"] = {labels.ANNOTATION_RUNTIME: "vllm"}
    result = plan(observed(ws, nodes=1), Settings(vllm_available=False))
    assert result.apply == () and result.nodeclaims == ()
    conds = {c["type"]: c for c in result.status["conditions"]}
    ready = conds["InferenceReady"]
    assert (ready["status"], ready["reason"]) == ("False", ConditionReason.VLLM_NOT_INSTALLED)
    assert "not installed" in ready["message"] and "kaito up --vllm-python" in ready["message"]
    assert conds["WorkspaceSucceeded"]["reason"] == "workspaceFailed" and result.status["state"] == "Failed"


def test_a_configmap_edited_later_is_refused_by_the_recheck_naming_the_key() -> None:
    ws = CASES["controller-single-gpu"]
    running = planned(ws)
    sts = {**running.apply[-1], "metadata": {**running.apply[-1]["metadata"], "uid": "sts-uid"}}
    edited = {("default", "phi-4-mini-params"): {"inference_config.yaml": "vllm:\n  max-num-seq: 8\n"}}
    result = plan(observed({**ws, "status": running.status}, nodes=1, configmaps=edited, owned=[sts]))
    ready = {c["type"]: c for c in result.status["conditions"]}["InferenceReady"]
    assert ready["status"] == "False" and ready["reason"] == ConditionReason.VALIDATION_FAILED
    assert "vllm.max-num-seq: vLLM has no option --max-num-seq (did you mean max-num-seqs?)" in ready["message"]
    assert result.apply == () and result.delete == ()  # the running pod is left alone


def pod(name: str, state: dict, last: dict | None = None, ready: bool = False) -> dict:
    status = {"name": "c", "state": state, "restartCount": 1 if last else 0, "ready": ready}
    if last:
        status["lastState"] = last
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "status": {"containerStatuses": [status]}}


RECORD = {"reason": "InvalidRuntimeParameters", "field": "vllm.max-num-seqs",
          "message": "vllm.max-num-seqs: argument --max-num-seqs: invalid int value: 'many'",
          "file": "/mnt/config/inference_config.yaml"}


def test_a_termination_message_becomes_the_inference_condition() -> None:
    ws = CASES["controller-single-gpu"]
    running = planned(ws)
    sts = {**running.apply[-1], "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 0}}
    sts["metadata"] = {**sts["metadata"], "generation": 1}
    crashed = pod("phi-4-mini-0", {"waiting": {"reason": "CrashLoopBackOff"}},
                  {"terminated": {"exitCode": 3, "reason": "Error", "message": json.dumps(RECORD)}})
    result = plan(observed({**ws, "status": running.status}, nodes=1, owned=[sts], pods=[crashed]))
    conds = {c["type"]: c for c in result.status["conditions"]}
    assert (conds["InferenceReady"]["status"], conds["InferenceReady"]["reason"]) == ("False",
                                                                                     "InvalidRuntimeParameters")
    assert conds["InferenceReady"]["message"] == ("pod phi-4-mini-0 exited with code 3: vllm.max-num-seqs: "
                                                  "argument --max-num-seqs: invalid int value: 'many'")
    assert conds["WorkspaceSucceeded"]["reason"] == "workspaceFailed"
    # Restarted and loading (a crash loop does that every few seconds): the condition holds, no flapping.
    failed = result.status
    again = pod("phi-4-mini-0", {"running": {}}, {"terminated": {"exitCode": 3, "message": json.dumps(RECORD)}})
    result = plan(observed({**ws, "status": failed}, nodes=1, owned=[sts], pods=[again]))
    assert result.status is None  # unchanged: nothing to write
    # Ready again (the user fixed the ConfigMap): the old message is history.
    fixed = pod("phi-4-mini-0", {"running": {}}, {"terminated": {"exitCode": 3, "message": json.dumps(RECORD)}},
                ready=True)
    result = plan(observed({**ws, "status": running.status}, nodes=1, owned=[sts], pods=[fixed]))
    ready = {c["type"]: c for c in result.status["conditions"]}["InferenceReady"]
    assert ready["reason"] == "WorkspaceInferenceStatusPending"  # the StatefulSet still counts 0 ready


def test_a_model_that_failed_to_load_is_shown_but_not_final() -> None:
    ws = CASES["controller-single-gpu"]
    running = planned(ws)
    sts = {**running.apply[-1], "status": {"replicas": 1, "readyReplicas": 0}}
    record = {"reason": "ModelLoadFailed", "message": "cannot reach huggingface.co"}
    crashed = pod("phi-4-mini-0", {"terminated": {"exitCode": 1, "message": json.dumps(record)}})
    result = plan(observed({**ws, "status": running.status}, nodes=1, owned=[sts], pods=[crashed]))
    conds = {c["type"]: c for c in result.status["conditions"]}
    assert conds["InferenceReady"]["reason"] == "ModelLoadFailed"
    assert conds["WorkspaceSucceeded"]["reason"] == "workspacePending"


def test_pods_carry_the_image_settings() -> None:
    sts = planned(CASES["controller-multi-gpu"]).apply[-1]
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == images.build_runtime_image(
        images.ImageSettings(registry="registry.test/kaito", tag="0.1.0"))
