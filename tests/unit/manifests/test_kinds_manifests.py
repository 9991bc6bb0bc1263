"""Builders for InferenceSets and RAGEngines: golden files, and what each object must hold.

Goldens live in tests/golden/kinds/; regenerate after an intended change with
`UPDATE_GOLDEN=1 pytest tests/unit/manifests/test_kinds_manifests.py` and review the diff like code.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest

from kaito.api import autoscaling, inferenceset, kinds
from kaito.api.admission import admit
from kaito.catalog import presets, skus
from kaito.catalog.facts import build_catalog_facts
from kaito.manifests import gateway, inference_command, ownership, ragengine, scaledobject, workspace
from kaito.manifests import inferenceset as set_manifests
from tests.unit.manifests import kinds_cases as cases

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden" / "kinds"
apps_v1 = pytest.importorskip("lightkube.resources.apps_v1")
core_v1 = pytest.importorskip("lightkube.resources.core_v1")
rbac_v1 = pytest.importorskip("lightkube.resources.rbac_authorization_v1")
MODELS = {"Deployment": apps_v1.Deployment, "Service": core_v1.Service, "ConfigMap": core_v1.ConfigMap,
          "ServiceAccount": core_v1.ServiceAccount, "Role": rbac_v1.Role, "RoleBinding": rbac_v1.RoleBinding}


@pytest.mark.parametrize("case", cases.CASES)
def test_rendered_objects_match_golden(case: str) -> None:
    path = GOLDEN_DIR / f"{case}.yaml"
    text = workspace.dump_yaml(cases.CASES[case]())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def test_every_golden_file_has_a_case() -> None:
    assert {p.stem for p in GOLDEN_DIR.glob("*.yaml")} == set(cases.CASES)


@pytest.mark.parametrize("case", cases.CASES)
def test_core_objects_round_trip_through_the_kubernetes_models(case: str) -> None:
    for obj in cases.CASES[case]():
        model = MODELS.get(obj["kind"])
        if model is not None:
            assert model.from_dict(obj).to_dict() == obj, f"{obj['kind']} has fields Kubernetes does not know"


# --- child Workspaces -------------------------------------------------------------------------

def test_children_are_admitted_workspaces_owned_by_the_set() -> None:
    facts = build_catalog_facts()
    for child in cases.CASES["inferenceset-children-phi-4"]():
        assert child["apiVersion"] == "kaito.sh/v1beta1" and child["metadata"]["generateName"] == "phi-4-"
        assert child["metadata"]["labels"][inferenceset.LABEL_CREATED_BY] == "phi-4"
        assert child["metadata"]["ownerReferences"][0]["uid"] == cases.SET["metadata"]["uid"]
        assert child["resource"]["labelSelector"] == cases.SET["spec"]["labelSelector"]
        named = {**child, "metadata": {**child["metadata"], "name": "phi-4-abcde"}}
        verdict = admit(named, facts=facts)
        assert verdict.allowed, verdict.problems  # the config ConfigMap is only warned about: not read here
    (byo,) = cases.CASES["inferenceset-children-byo"]()
    assert "instanceType" not in byo["resource"] and byo["metadata"]["name"] == "llama-0"
    assert byo["metadata"]["ownerReferences"][0]["uid"] == ownership.PLACEHOLDER_UID  # a set not stored yet


def test_a_childs_pods_serve_the_sets_name_and_carry_its_label() -> None:
    obj = cases.hub(cases.SET)
    child = inferenceset.build_child_workspace(obj, name="phi-4-x1")
    preset = presets.get_preset("phi-4-mini-instruct")
    args = inference_command.build_runtime_args(child, preset, engine="vllm", gpu_count=1)
    assert "--served-model-name=phi-4" in args  # one model name for every replica, as KAITO
    assert ownership.build_selector_labels(child)[inferenceset.LABEL_CREATED_BY] == "phi-4"
    assert ownership.build_workspace_labels(child)[inferenceset.LABEL_CREATED_BY] == "phi-4"
    alone = child.model_copy(update={"metadata": child.metadata.model_copy(update={"labels": {}})})
    assert f"--served-model-name={preset.name}" in inference_command.build_runtime_args(
        alone, preset, engine="vllm", gpu_count=1)
    assert inferenceset.LABEL_CREATED_BY not in ownership.build_selector_labels(alone)


def test_replica_names_follow_spec_replicas() -> None:
    inputs = set_manifests.InferenceSetInputs(inference_set=cases.hub({**cases.SET, "spec": {
        **cases.SET["spec"], "replicas": 0}}))
    assert set_manifests.build_replica_names(inputs) == []


# --- ScaledObject -----------------------------------------------------------------------------

def test_scaled_object_is_what_keda_kaito_scaler_makes() -> None:
    (so,) = cases.CASES["scaledobject-phi-4"]()
    spec = so["spec"]
    assert so["metadata"]["annotations"] == {autoscaling.MANAGED_BY: "keda-kaito-scaler"}
    assert spec["scaleTargetRef"] == {"name": "phi-4", "apiVersion": "kaito.sh/v1beta1", "kind": "InferenceSet"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["pollingInterval"]) == (2, 6, 15)
    formula = spec["advanced"]["scalingModifiers"]["formula"]
    assert formula == ("(readiness_gate == 1 && vllm_num_requests_waiting > 10 && vllm_time_to_first_token_seconds > "
                       "0.5) ? 2.0 : ((vllm_num_requests_waiting < 2 && vllm_time_to_first_token_seconds < 0.1) ? "
                       "0.5 : 1.0)")
    names = [t["name"] for t in spec["triggers"]]
    assert names == ["vllm_num_requests_waiting", "vllm_time_to_first_token_seconds", "readiness_gate"]
    variables = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", formula))
    assert set(names) <= variables  # every trigger is in the formula, by the name KEDA gives its value
    hist = spec["triggers"][1]["metadata"]
    assert (hist["aggregation"], hist["metricCacheWindow"]) == ("windowed-avg", "120")
    assert spec["triggers"][2]["metadata"]["aggregation"] == "gate"
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 30 and behavior["scaleDown"]["policies"] == [
        {"type": "Pods", "value": 1, "periodSeconds": 600}]
    assert set(spec) <= {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "idleReplicaCount",
                         "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers"}  # KEDA's fields


def test_max_replicas_as_the_scaler_derives_it() -> None:
    policy, _ = autoscaling.parse_autoscaling({autoscaling.AUTO_PROVISION: "true", autoscaling.METRICS:
                                               "[{name: m, type: gauge, upthreshold: 2, downthreshold: 1}]"},
                                              node_count_limit=5)
    assert scaledobject.compute_max_replicas(policy, 5, None) is None  # wait for a child's targetNodeCount
    assert scaledobject.compute_max_replicas(policy, 5, 2) == 2
    assert scaledobject.compute_max_replicas(policy, 1, 4) == 1
    (so,) = cases.CASES["scaledobject-node-count-limit"]()
    assert so["spec"]["maxReplicaCount"] == 4 and so["spec"]["minReplicaCount"] == 1
    assert so["spec"]["triggers"][0]["metadata"]["scalerAddress"] == "keda-kaito-scaler-svc.keda.svc.cluster.local:10450"


# --- gateway ------------------------------------------------------------------------------------

def test_the_pool_selects_the_serving_pods_and_names_its_picker() -> None:
    objects = cases.CASES["gateway-phi-4"]()
    pool = objects[-1]
    assert (pool["apiVersion"], pool["kind"], pool["metadata"]["name"]) == (
        "inference.networking.k8s.io/v1", "InferencePool", "phi-4-inferencepool")
    assert pool["spec"]["selector"] == {"matchLabels": {inferenceset.LABEL_CREATED_BY: "phi-4"}}
    assert pool["spec"]["targetPorts"] == [{"number": 5000}]
    by_kind = {o["kind"]: o for o in objects}
    epp = by_kind["Service"]
    assert pool["spec"]["endpointPickerRef"]["name"] == epp["metadata"]["name"] == "phi-4-inferencepool-epp"
    assert pool["spec"]["endpointPickerRef"]["port"] == {"number": epp["spec"]["ports"][0]["port"]}
    pod_labels = by_kind["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert not set(pool["spec"]["selector"]["matchLabels"]) & set(pod_labels)  # the pool never picks the picker
    assert by_kind["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == by_kind["ServiceAccount"][
        "metadata"]["name"] == by_kind["RoleBinding"]["subjects"][0]["name"]
    args = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--pool-name") + 1] == "phi-4-inferencepool"
    assert all(o["metadata"]["ownerReferences"][0]["kind"] == "InferenceSet" for o in objects)
    multi = cases.CASES["gateway-multinode-llama"]()[-1]
    assert multi["spec"]["selector"]["matchLabels"] == {inferenceset.LABEL_CREATED_BY: "llama",
                                                        gateway.POD_INDEX_LABEL: "0"}


def test_only_vllm_preset_sets_outside_a_multirole_get_a_gateway() -> None:
    obj = cases.hub(cases.SET)
    assert gateway.wants_gateway(obj, "vllm") and not gateway.wants_gateway(obj, "transformers")
    owned = cases.hub({**cases.SET, "metadata": {**cases.SET["metadata"], "labels": {
        inferenceset.LABEL_MULTIROLE_PARENT: "mri"}}})
    assert not gateway.wants_gateway(owned, "vllm")
    templated = copy.deepcopy(cases.SET)
    templated["spec"]["template"]["inference"] = {"template": {"spec": {"containers": []}}}
    assert not gateway.wants_gateway(cases.hub(templated), "vllm")


# --- RAGEngine ----------------------------------------------------------------------------------

def _resolve(env: list[dict], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The environment a pod would see, secrets looked up in `secrets`."""
    out = {}
    for var in env:
        source = var.get("valueFrom")
        if source is None:
            out[var["name"]] = var["value"]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            out[var["name"]] = secrets[(ref["name"], ref["key"])]
        else:
            out[var["name"]] = f"<{source['fieldRef']['fieldPath']}>"
    return out


def _container(objects: list[dict]) -> dict:
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_the_service_reads_every_setting_the_spec_gives() -> None:
    """The env contract of kaito.runtime.rag.settings, fed to the service's own parser: KAITO's quirk
    (names its service never reads) is gone, remote embedding included."""
    settings_mod = pytest.importorskip("kaito.runtime.rag.settings")
    secrets = {("hf-token", "HF_TOKEN"): "hf_x", ("qdrant", "VECTOR_DB_ACCESS_SECRET"): "qk",
               ("llm-key", "LLM_ACCESS_SECRET"): "lk", ("embed-key", "REMOTE_EMBEDDING_ACCESS_SECRET"): "ek"}
    local = settings_mod.build_settings([], env=_resolve(_container(cases.CASES["ragengine-local-gpu-qdrant"]())["env"],
                                                          secrets))
    assert (local.embedding_type, local.embedding_model, local.vector_db, local.vector_db_url, local.vector_db_secret) == (
        "local", "BAAI/bge-small-en-v1.5", "qdrant", "http://qdrant.team.svc:6333", "qk")
    assert (local.llm_url, local.llm_secret, local.llm_context_window) == (
        "http://phi-4.team.svc/v1/chat/completions", "lk", 16384)
    assert str(local.persist_dir) == "/var/rag/docs" and local.pod_name == "<metadata.name>"
    env = _resolve(_container(cases.CASES["ragengine-local-gpu-qdrant"]())["env"], secrets)
    assert env["HF_TOKEN"] == "hf_x"  # a gated embedding model can download
    remote = settings_mod.build_settings([], env=_resolve(_container(cases.CASES["ragengine-remote-faiss"]())["env"],
                                                           secrets))
    assert (remote.embedding_type, remote.embedding_url, remote.embedding_secret, remote.vector_db) == (
        "remote", "https://embeddings.example.com/v1/embeddings", "ek", "faiss")
    assert remote.llm_context_window == 4096 and str(remote.persist_dir) == "/mnt/data/wiki"


def test_every_variable_set_is_one_the_service_reads() -> None:
    settings_mod = pytest.importorskip("kaito.runtime.rag.settings")
    read = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", settings_mod.__doc__)) | {"HF_TOKEN"}
    for case in ("ragengine-local-gpu-qdrant", "ragengine-remote-faiss"):
        assert {v["name"] for v in _container(cases.CASES[case]())["env"]} <= read


def test_rag_objects_nodeclaim_only_for_a_gpu_sku() -> None:
    local = cases.CASES["ragengine-local-gpu-qdrant"]()
    assert [o["kind"] for o in local] == ["NodeClaim", "Service", "Deployment"]
    claim = local[0]
    assert claim["metadata"]["labels"]["kaito.sh/ragengine"] == "docs" and "kaito.sh/workspace" not in claim[
        "metadata"]["labels"]
    assert claim["metadata"]["name"] == ragengine.build_nodeclaim_name(cases.hub(cases.RAG_LOCAL))
    assert _container(local)["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    remote = cases.CASES["ragengine-remote-faiss"]()
    assert [o["kind"] for o in remote] == ["Service", "Deployment"]
    assert remote[0]["spec"]["type"] == "LoadBalancer" and "nvidia.com/gpu" not in str(_container(remote)["resources"])
    cpu_sku = copy.deepcopy(cases.RAG_LOCAL)
    cpu_sku["spec"]["compute"]["instanceType"] = "Standard_D8s_v5"
    gpu = skus.lookup_sku("Standard_D8s_v5", "azure")
    objects = ragengine.build_ragengine_objects(ragengine.RAGEngineInputs(ragengine=cases.hub(cpu_sku), gpu=gpu))
    assert [o["kind"] for o in objects] == ["Service", "Deployment"]
    byo = ragengine.RAGEngineInputs(ragengine=cases.hub(cases.RAG_LOCAL), gpu=skus.lookup_sku("Standard_NC6s_v3",
                                                                                              "azure"),
                                    provision_nodes=False)
    assert ragengine.build_nodeclaim(byo) is None


def test_rag_storage_and_remote_embedding_gpu_choice() -> None:
    deployment = cases.CASES["ragengine-local-gpu-qdrant"]()[-1]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["vector-db-storage"] == {"name": "vector-db-storage", "persistentVolumeClaim": {"claimName": "docs-index"}}
    mounts = {m["name"]: m["mountPath"] for m in _container([deployment])["volumeMounts"]}
    assert mounts["vector-db-storage"] == "/var/rag"
    remote = cases.CASES["ragengine-remote-faiss"]()[-1]
    assert {v["name"]: v for v in remote["spec"]["template"]["spec"]["volumes"]}["vector-db-storage"]["emptyDir"] == {}
    remote_on_gpu = copy.deepcopy(cases.RAG_LOCAL)
    remote_on_gpu["spec"]["embedding"] = {"remote": {"url": "http://e"}}
    inputs = ragengine.RAGEngineInputs(ragengine=cases.hub(remote_on_gpu), gpu=skus.lookup_sku("Standard_NC6s_v3",
                                                                                               "azure"))
    assert ragengine.build_container(inputs)["resources"] == {"requests": dict(ragengine.CPU_REQUESTS)}


def test_builders_never_change_their_input() -> None:
    obj = cases.hub(cases.RAG_LOCAL)
    before = obj.model_dump()
    cases.CASES["ragengine-local-gpu-qdrant"]()
    ragengine.build_ragengine_objects(ragengine.RAGEngineInputs(ragengine=obj))
    assert obj.model_dump() == before
    iset = cases.hub(cases.SET)
    before = iset.model_dump()
    set_manifests.build_child_workspace(set_manifests.InferenceSetInputs(inference_set=iset), "x")
    gateway.build_gateway_objects(gateway.GatewayInputs(inference_set=iset))
    assert iset.model_dump() == before
    assert kinds.to_wire(iset, "kaito.sh/v1beta1")["spec"]["replicas"] == 2
