"""Unit checks of the manifest builders: ownership, purity, placement, images, commands, tuning."""

from __future__ import annotations

import copy

import pytest

from kaito.api import labels
from kaito.catalog.presets import get_preset
from kaito.catalog.skus import GPUConfig, lookup_sku
from kaito.manifests import (
    images,
    inference,
    nodeclaim,
    placement,
    service,
    template,
    tuning,
    tuning_config,
    workspace,
)
from tests.unit.manifests import cases

ALL_CASES = [*cases.CASES, *cases.AWS_CASES]
CLUSTER_SCOPED = {"NodeClaim"}


def _render(case: str) -> list[dict]:
    cloud = "aws" if case in cases.AWS_CASES else "azure"
    return workspace.build_workspace_objects(cases.workspace(case), workspace.RenderSettings(cloud=cloud),
                                             api_version=cases.written_version(case))


@pytest.mark.parametrize("case", ALL_CASES)
def test_namespaced_objects_are_owned_by_the_workspace(case: str) -> None:
    ws = cases.workspace(case)
    for obj in _render(case):
        meta = obj["metadata"]
        assert meta["labels"][labels.LABEL_WORKSPACE_NAME] == ws.name
        assert meta["labels"][labels.LABEL_WORKSPACE_NAMESPACE] == ws.namespace
        if obj["kind"] in CLUSTER_SCOPED:
            assert "ownerReferences" not in meta and "namespace" not in meta
            continue
        assert meta["namespace"] == ws.namespace
        (owner,) = meta["ownerReferences"]
        assert owner["kind"] == "Workspace" and owner["name"] == ws.name and owner["controller"] is True
        assert owner["apiVersion"] == "kaito.sh/v1beta1"  # the storage version, whichever was written


def test_owner_reference_carries_the_stored_uid() -> None:
    objects = _render("inference-falcon-7b")
    assert {o["metadata"]["ownerReferences"][0]["uid"] for o in objects if o["kind"] != "NodeClaim"} == {
        "0b5f6c2e-1111-4a8e-9d3c-000000000001"
    }


@pytest.mark.parametrize("case", ALL_CASES)
def test_builders_do_not_mutate_the_workspace_and_share_nothing_with_it(case: str) -> None:
    ws = cases.workspace(case)
    before = copy.deepcopy(ws.model_dump())
    objects = workspace.build_workspace_objects(ws)
    assert ws.model_dump() == before
    # Scribbling over every output container must not reach the input either.
    def scribble(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                scribble(value)
            node["x-scribbled"] = True
        elif isinstance(node, list):
            for value in node:
                scribble(value)
            node.append("x-scribbled")

    scribble(objects)
    assert ws.model_dump() == before


@pytest.mark.parametrize("case", ALL_CASES)
def test_no_sub_object_appears_twice(case: str) -> None:
    seen: set[int] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict | list):
            assert id(node) not in seen, "a dict or list is shared between two places"
            seen.add(id(node))
            for value in node.values() if isinstance(node, dict) else node:
                walk(value)

    walk(_render(case))


def test_rendering_is_deterministic() -> None:
    assert _render("inference-adapters-phi-3") == _render("inference-adapters-phi-3")


def _inputs(case: str = "inference-falcon-7b", **kw) -> inference.InferenceInputs:
    ws = cases.workspace(case)
    name = (ws.inference.preset.name if ws.inference and ws.inference.preset else "falcon-7b")
    return inference.InferenceInputs(workspace=ws, preset=get_preset(name), **kw)


def test_single_node_preset_is_a_deployment_with_kaito_service_ports() -> None:
    svc, deploy = inference.build_inference_objects(_inputs(revision=3))
    assert deploy["kind"] == "Deployment"
    assert deploy["metadata"]["annotations"][labels.ANNOTATION_REVISION] == "3"
    ports = {(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
    assert ports == {("http", 80, 5000), ("torch", 29500, 29500)}
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == {labels.LABEL_WORKSPACE_NAME: "workspace-falcon-7b"}
    pod = deploy["spec"]["template"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "kaito.runtime.inference"]
    assert "--model=tiiuae/falcon-7b" in container["args"]
    assert "--served-model-name=falcon-7b" in container["args"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 5000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 5000}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]


def test_multi_node_preset_is_a_statefulset_with_headless_service_and_rank_env() -> None:
    objects = inference.build_inference_objects(_inputs("inference-multinode-llama-2-13b"))
    assert [o["kind"] for o in objects] == ["Service", "Service", "StatefulSet"]
    svc, headless, sts = objects
    assert svc["spec"]["selector"][service.POD_NAME_LABEL] == "workspace-llama-2-13b-0"
    assert headless["metadata"]["name"] == "workspace-llama-2-13b-headless"
    assert headless["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == "workspace-llama-2-13b-headless"
    assert sts["spec"]["replicas"] == 2 and sts["spec"]["podManagementPolicy"] == "Parallel"
    container = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert env["MASTER_ADDR"]["value"] == "workspace-llama-2-13b-0.workspace-llama-2-13b-headless.team-a.svc.cluster.local"
    script = container["command"][2]
    assert "--nnodes=2" in script and "--nproc_per_node=1" in script
    assert "--rdzv_endpoint=workspace-llama-2-13b-0.workspace-llama-2-13b-headless.team-a.svc.cluster.local:29500" in script


def test_private_preset_uses_the_users_image_and_all_secrets() -> None:
    ws = cases.make_workspace("""
metadata: {name: w}
resource: {labelSelector: {matchLabels: {a: b}}}
inference:
  preset: {name: llama-2-7b, accessMode: private, presetOptions: {image: "r.io/llama:1", imagePullSecrets: [p]}}
  adapters:
  - source: {name: ad, image: "r.io/ad:1", imagePullSecrets: [q]}
""")
    spec = inference.build_pod_spec(inference.InferenceInputs(workspace=ws, preset=get_preset("llama-2-7b")))
    assert spec["containers"][0]["image"] == "r.io/llama:1"
    assert spec["imagePullSecrets"] == [{"name": "p"}, {"name": "q"}]


def test_public_image_from_registry_and_tag_settings() -> None:
    preset = get_preset("falcon-7b")
    assert images.build_runtime_image(images.ImageSettings(registry="r.io/k/"), preset) == "r.io/k/kaito-runtime:0.0.6"
    assert images.build_runtime_image(images.ImageSettings(registry="r.io", tag="1.2"), preset) == "r.io/kaito-runtime:1.2"
    assert images.is_runtime_image("r.io/k/kaito-runtime:0.0.6")
    assert images.is_runtime_image("localhost:5000/kaito-runtime@sha256:abc")
    assert not images.is_runtime_image("r.io/kaito-runtime-extra:1")
    assert not images.is_runtime_image("registry.example.com/kaito/llama-2-13b:0.0.3")


def test_adapters_get_init_containers_volume_and_strength_env_with_default() -> None:
    spec = inference.build_pod_spec(_inputs("inference-adapters-phi-3"))
    assert [c["name"] for c in spec["initContainers"]] == ["phi-3-adapter", "phi-3-second"]
    assert spec["initContainers"][0]["command"][-1] == (
        "mkdir -p /mnt/adapter/phi-3-adapter && cp -r /data/* /mnt/adapter/phi-3-adapter"
    )
    container = spec["containers"][0]
    assert container["env"] == [{"name": "phi-3-adapter", "value": "0.2"}, {"name": "phi-3-second", "value": "1.0"}]
    assert "--adapters-dir=/mnt/adapter" in container["args"]
    assert {"name": "adapter-volume", "emptyDir": {}} in spec["volumes"]
    assert spec["imagePullSecrets"] == [{"name": "adapter-secret"}]


def test_volume_adapters_are_mounted_in_the_adapters_dir_without_a_copy() -> None:
    ws = cases.make_workspace("""
metadata: {name: ws, namespace: default}
resource: {instanceType: Standard_NC24ads_A100_v4, labelSelector: {matchLabels: {apps: a}}}
inference:
  preset: {name: phi-3-mini-128k-instruct}
  adapters:
  - source: {name: tuned, volumeSource: {hostPath: {path: /adapters/tuned}}, imagePullSecrets: [unused]}
  - source: {name: volume, volumeSource: {persistentVolumeClaim: {claimName: pvc}}}
  - source: {name: Tuned, volumeSource: {emptyDir: {}}}
""")
    before = ws.model_dump()
    spec = inference.build_pod_spec(inference.InferenceInputs(workspace=ws, preset=get_preset("phi-3-mini-128k-instruct")))
    assert ws.model_dump() == before  # inputs untouched
    assert "initContainers" not in spec and "imagePullSecrets" not in spec
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["adapter-volume"] == {"name": "adapter-volume", "emptyDir": {}}
    assert volumes["adapter-src-tuned"] == {"name": "adapter-src-tuned", "hostPath": {"path": "/adapters/tuned"}}
    # `volume` cannot take the adapters dir's own name; `Tuned` is not `tuned`.
    assert volumes["adapter-src-volume"]["persistentVolumeClaim"] == {"claimName": "pvc"}
    assert len(volumes) == 5 and all(len(n) <= 63 and n == n.lower() for n in volumes)
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["/mnt/adapter"]["name"] == "adapter-volume"
    assert mounts["/mnt/adapter/tuned"] == {"name": "adapter-src-tuned", "mountPath": "/mnt/adapter/tuned", "readOnly": True}
    assert mounts["/mnt/adapter/Tuned"]["name"] not in ("adapter-src-tuned", "adapter-volume")
    assert spec["containers"][0]["env"] == [
        {"name": "tuned", "value": "1.0"}, {"name": "volume", "value": "1.0"}, {"name": "Tuned", "value": "1.0"}
    ]
    assert "--adapters-dir=/mnt/adapter" in spec["containers"][0]["args"]


@pytest.mark.parametrize(("value", "kind"), [("True", "LoadBalancer"), ("true", "ClusterIP"), ("yes", "ClusterIP")])
def test_enablelb_needs_exactly_True(value: str, kind: str) -> None:
    ws = cases.workspace("inference-falcon-7b")
    ws.metadata.annotations = {labels.ANNOTATION_ENABLE_LB: value}
    assert service.build_service(ws, multi_node=False)["spec"]["type"] == kind


def test_gpu_requests_follow_the_sku_and_a_cpu_node_requests_none() -> None:
    falcon40 = cases.make_workspace("""
metadata: {name: w}
resource: {instanceType: Standard_NC96ads_A100_v4, labelSelector: {matchLabels: {a: b}}}
inference: {preset: {name: falcon-40b}}
""")
    preset = get_preset("falcon-40b")
    sku = lookup_sku("Standard_NC96ads_A100_v4")
    container = inference.build_container(inference.InferenceInputs(workspace=falcon40, preset=preset, gpu=sku))
    assert container["resources"]["limits"] == {placement.GPU_RESOURCE: str(sku.gpu_count)}
    # Unknown SKU: the preset's own GPU count.
    assert inference.build_container(inference.InferenceInputs(workspace=falcon40, preset=preset))["resources"]["requests"] == {
        placement.GPU_RESOURCE: "2"
    }
    cpu = GPUConfig(instance_type="local", gpu_count=0, gpu_memory_gib=0)
    container = inference.build_container(inference.InferenceInputs(workspace=falcon40, preset=preset, gpu=cpu))
    assert container["resources"] == {} and "--device=cpu" in container["args"]


def test_chosen_nodes_pin_pods_and_match_labels_become_affinity() -> None:
    spec = inference.build_pod_spec(_inputs(node_names=("node-b", "node-a")))
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [
        {"key": "apps", "operator": "In", "values": ["falcon-7b"]},
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a", "node-b"]},
    ]
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
    ]


def test_engine_from_annotation_only_when_the_preset_supports_it() -> None:
    """An unknown runtime is the default of the version the Workspace was written in (recorded on it):
    the preset's first (transformers) for v1alpha1, vLLM for v1beta1."""
    ws = cases.workspace("inference-falcon-7b")

    def engine(annotations: dict) -> list[str]:
        ws.metadata.annotations = annotations
        args = inference.build_container(inference.InferenceInputs(workspace=ws, preset=get_preset("falcon-7b")))["args"]
        return [a for a in args if a.startswith("--engine=")]

    alpha = {labels.ANNOTATION_API_VERSION: cases.V1ALPHA1}
    assert engine({**alpha, labels.ANNOTATION_RUNTIME: "vllm"}) == ["--engine=vllm"]
    assert engine({**alpha, labels.ANNOTATION_RUNTIME: "tensorrt"}) == ["--engine=transformers"]
    assert engine({**alpha}) == ["--engine=transformers"]
    assert engine({labels.ANNOTATION_RUNTIME: "tensorrt"}) == ["--engine=vllm"]  # no record: v1beta1
    assert engine({labels.ANNOTATION_RUNTIME: "transformers"}) == ["--engine=transformers"]


def test_trust_remote_code_and_kaito_run_params_reach_the_runtime() -> None:
    args = inference.build_container(_inputs("inference-adapters-phi-3"))["args"]
    assert {"--pipeline=text-generation", "--torch_dtype=auto", "--trust_remote_code"} <= set(args)


def test_template_keeps_users_pod_and_adds_placement_without_duplicate_tolerations() -> None:
    ws = cases.workspace("inference-template")
    ws.inference.template["spec"]["tolerations"].append(dict(placement.GPU_TOLERATIONS[1]))
    deploy = template.build_template_deployment(ws, revision=2)
    pod = deploy["spec"]["template"]
    assert pod["metadata"]["labels"]["app"] == "custom"
    assert pod["metadata"]["labels"][labels.LABEL_WORKSPACE_NAME] == "workspace-custom"
    assert pod["spec"]["containers"][0]["image"] == "ghcr.io/example/server:1.0"
    assert pod["spec"]["affinity"]["podAntiAffinity"] == {}
    assert "nodeAffinity" in pod["spec"]["affinity"]
    keys = [t["key"] for t in pod["spec"]["tolerations"]]
    assert keys == ["dedicated", "sku", "nvidia.com/gpu"]
    assert deploy["spec"]["replicas"] == 2
    assert deploy["metadata"]["annotations"][labels.ANNOTATION_REVISION] == "2"


def test_tuning_urls_go_to_the_trainer_and_image_output_runs_the_pusher_after_it() -> None:
    ws = cases.workspace("tuning-urls-to-image")
    config_map, job = tuning.build_tuning_objects(tuning.TuningInputs(workspace=ws, preset=get_preset("phi-3-mini-128k-instruct")))
    assert config_map["metadata"]["name"] == "workspace-tuning-phi-3-tuning-config"
    assert "load_in_4bit: true" in config_map["data"]["training_config.yaml"]
    spec = job["spec"]["template"]["spec"]
    assert job["spec"]["backoffLimit"] == 0 and spec["restartPolicy"] == "Never"
    (trainer,) = spec["initContainers"]
    (pusher,) = spec["containers"]
    assert trainer["command"] == ["python", "-m", "kaito.runtime.tuning"]
    assert any(a.startswith("--data=https://huggingface.co/") for a in trainer["args"])
    assert "--method=qlora" in trainer["args"]
    assert pusher["name"] == "pusher" and "crane append" in pusher["command"][-1]
    assert "--new_tag myregistry.azurecr.io/adapters/phi-3-dolly:0.0.1" in pusher["command"][-1]
    assert {"name": "push-secret"} in spec["imagePullSecrets"]
    assert {m["name"] for m in pusher["volumeMounts"]} == {"results-volume", "docker-config"}


def test_tuning_image_input_extracts_data_and_volume_output_mounts_the_users_volume() -> None:
    ws = cases.workspace("tuning-image-to-volume")
    (job,) = tuning.build_tuning_objects(tuning.TuningInputs(workspace=ws, preset=get_preset("falcon-7b"), output_dir="/mnt/out"))
    spec = job["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["data-extractor"]
    (trainer,) = spec["containers"]
    assert "--data=/mnt/data" in trainer["args"] and "--output=/mnt/out" in trainer["args"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["results-volume"] == {"name": "results-volume", "persistentVolumeClaim": {"claimName": "adapters-pvc"}}
    assert volumes["config-volume"]["configMap"]["name"] == "my-lora-params"
    assert {"name": "results-volume", "mountPath": "/mnt/out"} in trainer["volumeMounts"]
    assert spec["imagePullSecrets"] == [{"name": "data-secret"}]


def test_tuning_volume_input_is_mounted_read_only() -> None:
    ws = cases.workspace("tuning-volume-to-image")
    _, job = tuning.build_tuning_objects(tuning.TuningInputs(workspace=ws, preset=get_preset("mistral-7b")))
    spec = job["spec"]["template"]["spec"]
    trainer = spec["initContainers"][0]
    assert {"name": "data-volume", "mountPath": "/mnt/data", "readOnly": True} in trainer["volumeMounts"]
    assert {"name": "data-volume", "persistentVolumeClaim": {"claimName": "dataset-pvc"}} in spec["volumes"]
    assert "docker-config" not in {v["name"] for v in spec["volumes"]}


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_default_training_config_is_kaitos_template(method: str) -> None:
    import yaml

    config = yaml.safe_load(tuning_config.build_default_training_config(method))["training_config"]
    assert set(config) == {"ModelConfig", "QuantizationConfig", "LoraConfig", "TrainingArguments", "DataCollator", "DatasetConfig"}
    assert config["TrainingArguments"]["output_dir"] == "/mnt/results"
    assert config["QuantizationConfig"]["load_in_4bit"] is (method == "qlora")


def test_nodeclaims_cover_the_count_with_deterministic_names_and_preset_disk() -> None:
    ws = cases.workspace("inference-multinode-llama-2-13b")
    claims = nodeclaim.build_nodeclaims(ws, get_preset("llama-2-13b"))
    assert [c["metadata"]["name"] for c in claims] == [
        nodeclaim.build_nodeclaim_name("team-a", "workspace-llama-2-13b", i) for i in range(2)
    ]
    assert claims == nodeclaim.build_nodeclaims(ws, get_preset("llama-2-13b"))
    claim = claims[0]
    assert claim["spec"]["taints"] == [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]
    assert claim["spec"]["resources"]["requests"]["storage"] == "46Gi"
    assert claim["metadata"]["labels"]["apps"] == "llama-2-13b"
    requirement = {r["key"]: r["values"] for r in claim["spec"]["requirements"]}
    assert requirement["node.kubernetes.io/instance-type"] == ["Standard_NC12s_v3"]
    assert requirement["kubernetes.io/os"] == ["linux"]


def test_nodeclaim_names_agree_with_the_controller() -> None:
    controller_nodes = pytest.importorskip("kaito.controller.nodes")
    for ns, name, slot in [("default", "ws", 0), ("team-a", "workspace-llama-2-13b", 3)]:
        assert nodeclaim.build_nodeclaim_name(ns, name, slot) == controller_nodes.build_nodeclaim_name(ns, name, slot)


def test_tuning_nodeclaim_asks_for_the_tuning_disk() -> None:
    ws = cases.workspace("tuning-image-to-volume")
    assert nodeclaim.compute_disk_request(ws, get_preset("falcon-7b")) == get_preset("falcon-7b").tuning.disk


def test_reserved_selector_keys_never_reach_labels_or_affinity() -> None:
    objects = _render("nodeclaims-aws-count-3")
    for claim in (o for o in objects if o["kind"] == "NodeClaim"):
        assert claim["metadata"]["labels"][labels.LABEL_WORKSPACE_NAME] == "workspace-aws"
    deploy = next(o for o in objects if o["kind"] == "Deployment")
    terms = deploy["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    keys = [e["key"] for e in terms["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]]
    assert keys == ["apps"]


def test_byo_render_has_no_nodeclaims() -> None:
    objects = workspace.build_workspace_objects(
        cases.workspace("inference-falcon-7b"), workspace.RenderSettings(provision_nodes=False)
    )
    assert "NodeClaim" not in {o["kind"] for o in objects}


def test_unknown_preset_is_an_error_naming_the_field() -> None:
    ws = cases.make_workspace("""
metadata: {name: w}
resource: {labelSelector: {matchLabels: {a: b}}}
inference: {preset: {name: no-such-model}}
""")
    with pytest.raises(workspace.ManifestError) as info:
        workspace.build_workspace_objects(ws)
    assert info.value.error.path == "inference.preset.name"
    assert "no-such-model" in str(info.value)


@pytest.mark.parametrize(("name", "count", "nproc"), [("llama-2-70b", 1, "8"), ("llama-2-70b", 2, "4"), ("llama-2-13b", 1, "2")])
def test_distributed_llama_splits_its_world_size_over_the_nodes(name: str, count: int, nproc: str) -> None:
    ws = cases.make_workspace(f"""
metadata: {{name: w}}
resource: {{count: {count}, labelSelector: {{matchLabels: {{a: b}}}}}}
inference: {{preset: {{name: {name}, accessMode: private, presetOptions: {{image: "r.io/l:1"}}}}}}
""")
    script = inference.build_container(inference.InferenceInputs(workspace=ws, preset=get_preset(name)))["command"][2]
    assert f"--nnodes={count}" in script and f"--nproc_per_node={nproc}" in script
    assert ("--node_rank=$(echo $HOSTNAME" in script) is (count > 1)
    assert ("--rdzv_endpoint=localhost:29500" in script) is (count == 1)


def test_a_hub_id_outside_the_catalog_renders_with_a_generic_preset() -> None:
    ws = cases.make_workspace("""
metadata: {name: w}
resource: {instanceType: Standard_NC24ads_A100_v4, labelSelector: {matchLabels: {a: b}}}
inference: {preset: {name: example-org/tiny-chat}}
""")
    deploy = next(o for o in workspace.build_workspace_objects(ws, api_version=cases.V1ALPHA1)
                  if o["kind"] == "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--model=example-org/tiny-chat" in args
    assert "--served-model-name=example-org/tiny-chat" in args
    assert not any(a.startswith("--revision=") for a in args)


def test_the_same_hub_id_written_in_v1beta1_runs_kaito_v012s_vllm_pods() -> None:
    ws = cases.make_workspace("""
metadata: {name: w}
resource: {instanceType: Standard_NC24ads_A100_v4, labelSelector: {matchLabels: {a: b}}}
inference: {preset: {name: example-org/tiny-chat}}
""")
    objects = workspace.build_workspace_objects(ws, api_version=cases.V1BETA1)
    assert [o["kind"] for o in objects] == ["NodeClaim", "ControllerRevision", "Service", "Service", "StatefulSet"]
    (sts,) = [o for o in objects if o["kind"] == "StatefulSet"]
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--engine=vllm", "--model=example-org/tiny-chat", "--served-model-name=tiny-chat"} <= set(args)
    assert sts["spec"]["replicas"] == 1 and sts["spec"]["serviceName"] == "w-headless"


def test_an_inferenceset_childs_vllm_pods_serve_the_sets_name_and_carry_its_label() -> None:
    from kaito.api import inferenceset

    ws = cases.make_workspace("""
metadata: {name: chat-0, namespace: team-a, labels: {inferenceset.kaito.sh/created-by: chat}}
resource: {instanceType: Standard_NC24ads_A100_v4, labelSelector: {matchLabels: {a: b}}}
inference: {preset: {name: phi-4-mini-instruct}}
""")
    objects = workspace.build_workspace_objects(ws, api_version=cases.V1BETA1)
    (sts,) = [o for o in objects if o["kind"] == "StatefulSet"]
    assert "--served-model-name=chat" in sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert sts["spec"]["template"]["metadata"]["labels"][inferenceset.LABEL_CREATED_BY] == "chat"
    assert sts["spec"]["selector"]["matchLabels"] == {labels.LABEL_WORKSPACE_NAME: "chat-0",
                                                      inferenceset.LABEL_CREATED_BY: "chat"}
