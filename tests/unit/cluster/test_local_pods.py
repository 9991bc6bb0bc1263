"""The local runner's pure translation of pod templates, and the local provisioner's Node objects."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kaito.cluster.local import pods, provisioner


def _lookup(data):
    return lambda kind, namespace, name: data.get((kind, namespace, name))


def test_runtime_command_becomes_a_local_command_line():
    container = {"name": "ws", "image": "x/kaito-runtime:1", "command": ["python", "-m", "kaito.runtime.inference"],
                 "args": ["--model=org/m", "--device=cuda", "--host=0.0.0.0", "--port=5000",
                          "--adapters-dir=/mnt/adapter"]}
    argv = pods.build_argv(container, {"/mnt/adapter": "/state/adapters"}, ports={5000: 41000}, has_gpu=False)
    assert argv == [sys.executable, "-m", "kaito.runtime.inference", "--model=org/m", "--device=cpu",
                    "--host=127.0.0.1", "--port=41000", "--adapters-dir=/state/adapters"]
    on_gpu = pods.build_argv(container, {}, ports={}, has_gpu=True)
    assert "--device=cuda" in on_gpu and "--port=5000" in on_gpu


def test_shell_commands_run_through_sh_with_paths_rewritten_once():
    container = {"command": ["/bin/sh", "-c", "mkdir -p /mnt/adapter/a && cp -r /data/* /mnt/adapter/a"]}
    mapping = {"/mnt/adapter": "/home/v/adapter-volume", "/data": "/home/img/data"}
    argv = pods.build_argv(container, mapping, ports={}, has_gpu=False)
    assert argv == ["/bin/sh", "-c", "mkdir -p /home/v/adapter-volume/a && cp -r /home/img/data/* /home/v/adapter-volume/a"]


@pytest.mark.parametrize(("text", "expected"), [
    ("/mnt/data", "/L/mnt-data"),            # the longer mount wins over /data
    ("--data=/mnt/data/x.jsonl", "--data=/L/mnt-data/x.jsonl"),
    ("/data-volume", "/data-volume"),         # not the /data folder
    ("/x/data", "/x/data"),                   # not at the start of a path
    ("/data", "/L/data"),
])
def test_path_rewriting_respects_path_boundaries(text, expected):
    assert pods.rewrite_paths(text, {"/data": "/L/data", "/mnt/data": "/L/mnt-data"}) == expected


def test_image_folders():
    root = Path("/i")
    assert pods.build_image_dir(root, "reg.io/a/b:1.0") == Path("/i/reg.io/a/b/1.0")
    assert pods.build_image_dir(root, "reg.io:5000/a/b") == Path("/i/reg.io:5000/a/b/latest")
    assert pods.build_image_dir(root, "a/b@sha256:abc") == Path("/i/a/b/sha256-abc")


def test_containers_are_classified(tmp_path):
    (tmp_path / "reg.io" / "adapters" / "x" / "1").mkdir(parents=True)

    def way(image, push=False):
        return pods.classify_container({"image": image}, is_runtime_image=lambda i: "kaito-runtime" in i,
                                       images_root=tmp_path, is_push_sidecar=push)

    assert way("mcr/aks/kaito/kaito-runtime:0.1") == "runtime"
    assert way("reg.io/adapters/x:1") == "local-image"
    assert way("gcr.io/crane:debug", push=True) == "local-push"
    assert way("nginx:1.27") == "needs-cluster"


def test_node_affinity_and_selector():
    node = {"metadata": {"labels": {"apps": "phi", "kubernetes.io/os": "linux"}}}
    term = lambda *exprs: {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {  # noqa: E731
        "nodeSelectorTerms": [{"matchExpressions": list(exprs)}]}}}}
    assert pods.node_fits(term({"key": "apps", "operator": "In", "values": ["phi"]}), node)
    assert not pods.node_fits(term({"key": "apps", "operator": "In", "values": ["falcon"]}), node)
    assert not pods.node_fits(term({"key": "apps", "operator": "NotIn", "values": ["phi"]}), node)
    assert pods.node_fits(term({"key": "gpu", "operator": "DoesNotExist"}), node)
    assert not pods.node_fits({"nodeSelector": {"kubernetes.io/os": "windows"}}, node)
    assert pods.node_fits({}, node)


def test_a_pod_that_asks_for_no_node_runs_on_this_machine():
    from kaito.cluster.local import runner

    plain = {"containers": [{"name": "rag", "resources": {"requests": {"cpu": "500m"}}}]}
    assert runner.asks_for_no_node(plain)
    assert not runner.asks_for_no_node({**plain, "nodeSelector": {"apps": "x"}})
    gpu = {"containers": [{"name": "rag", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}
    assert not runner.asks_for_no_node(gpu)
    affinity = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "apps", "operator": "In", "values": ["x"]}]}]}}}}
    assert not runner.asks_for_no_node({**plain, **affinity})


def test_env_resolves_references_and_names_what_is_missing():
    data = {("Secret", "ns", "hf"): {"token": "s3cret"}, ("ConfigMap", "ns", "cfg"): {"A": "1"}}
    container = {"envFrom": [{"configMapRef": {"name": "cfg"}}],
                 "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
                         {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "B", "value": "$(A)-x"}]}
    assert pods.build_env(container, "ns", "p-0", _lookup(data)) == {"A": "1", "HF_TOKEN": "s3cret", "POD": "p-0",
                                                                      "B": "1-x"}
    missing = {"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(pods.PodConfigError, match="'k' of Secret 'nope'"):
        pods.build_env(missing, "ns", "p", _lookup({}))


def test_volumes_map_to_state_folders(tmp_path):
    spec = {"volumes": [{"name": "scratch", "emptyDir": {}},
                        {"name": "host", "hostPath": {"path": "/etc/models"}},
                        {"name": "pvc", "persistentVolumeClaim": {"claimName": "adapters"}},
                        {"name": "cfg", "configMap": {"name": "tc"}},
                        {"name": "docker", "projected": {"sources": [{"secret": {"name": "push", "items": [
                            {"key": ".dockerconfigjson", "path": "config.json"}]}}]}}]}
    data = {("ConfigMap", "ns", "tc"): {"training_config.yaml": "a: 1"},
            ("Secret", "ns", "push"): {".dockerconfigjson": "{}"}}
    plan = pods.plan_volumes(spec, volumes_root=tmp_path, namespace="ns", pod_name="p", lookup=_lookup(data))
    assert plan.dirs["scratch"] == tmp_path / "pods" / "ns" / "p" / "scratch"
    assert plan.dirs["host"] == tmp_path / "hostpath" / "etc" / "models"  # sandboxed, never the real /etc
    assert plan.dirs["pvc"] == tmp_path / "pvc" / "ns" / "adapters"
    assert plan.files[plan.dirs["cfg"] / "training_config.yaml"] == "a: 1"
    assert plan.files[plan.dirs["docker"] / "config.json"] == "{}"
    with pytest.raises(pods.PodConfigError, match="needs a cluster"):
        pods.plan_volumes({"volumes": [{"name": "n", "nfs": {}}]}, volumes_root=tmp_path, namespace="ns",
                          pod_name="p", lookup=_lookup({}))


@pytest.mark.parametrize("volume", [
    {"name": "v", "hostPath": {"path": "/../../../../tmp/escape"}},
    {"name": "v", "hostPath": {"path": "models/../../../../x"}},
    {"name": "v", "persistentVolumeClaim": {"claimName": "../../../x"}},
])
def test_volumes_cannot_leave_the_sandbox(tmp_path, volume):
    with pytest.raises(pods.PodConfigError, match="volume v: .* leads outside the local volumes folder"):
        pods.plan_volumes({"volumes": [volume]}, volumes_root=tmp_path / "vols", namespace="ns", pod_name="p",
                          lookup=_lookup({}))


def test_a_symlink_in_the_sandbox_cannot_lead_out(tmp_path):
    (tmp_path / "vols" / "hostpath").mkdir(parents=True)
    (tmp_path / "vols" / "hostpath" / "out").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(pods.PodConfigError, match="outside"):
        pods.plan_volumes({"volumes": [{"name": "v", "hostPath": {"path": "/out/x"}}]}, volumes_root=tmp_path / "vols",
                          namespace="ns", pod_name="p", lookup=_lookup({}))


def test_separate_flag_values_are_rewritten_like_joined_ones():
    container = {"command": ["python", "-m", "srv"],
                 "args": ["--port", "5000", "--host", "0.0.0.0", "--device_map", "cuda", "--name", "--port",
                          "--device_map=cuda", "--other", "5000"]}
    argv = pods.build_argv(container, {}, ports={5000: 41000}, has_gpu=False)
    assert argv[3:] == ["--port", "41000", "--host", "127.0.0.1", "--device_map", "cpu", "--name", "--port",
                        "--device_map=cpu", "--other", "5000"]
    on_gpu = pods.build_argv(container, {}, ports={5000: 41000}, has_gpu=True)
    assert on_gpu[7:9] == ["--device_map", "cuda"] and on_gpu[3:5] == ["--port", "41000"]


def test_a_volume_mounted_inside_another_is_linked_into_it(tmp_path):
    spec = {"volumes": [{"name": "adapters", "emptyDir": {}}, {"name": "tuned", "hostPath": {"path": "/adapters/t"}},
                        {"name": "deep", "persistentVolumeClaim": {"claimName": "d"}}]}
    plan = pods.plan_volumes(spec, volumes_root=tmp_path, namespace="ns", pod_name="p", lookup=_lookup({}))
    container = {"volumeMounts": [{"name": "adapters", "mountPath": "/mnt/adapter"},
                                  {"name": "tuned", "mountPath": "/mnt/adapter/tuned", "readOnly": True},
                                  {"name": "deep", "mountPath": "/mnt/adapter/tuned/extra/deep"},
                                  {"name": "adapters", "mountPath": "/mnt/adapterx"}]}  # a sibling, not nested
    assert pods.plan_nested_mounts(container, plan) == [
        (plan.dirs["adapters"] / "tuned", plan.dirs["tuned"]),
        (plan.dirs["tuned"] / "extra" / "deep", plan.dirs["deep"]),  # nearest enclosing mount
    ]
    assert pods.plan_nested_mounts({"volumeMounts": container["volumeMounts"][:1]}, plan) == []


MACHINE = provisioner.MachineFacts("host", 8, 32 * 2**30, (provisioner.GPUInfo("NVIDIA-A100", 81920),))
CLAIM = {"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
         "metadata": {"name": "ws1-0", "labels": {"apps": "phi", "kaito.sh/workspace": "ws"}},
         "spec": {"requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In",
                                    "values": ["Standard_NC6s_v3"]}],
                  "taints": [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]}}


def test_node_for_a_claim_describes_this_machine():
    node = provisioner.build_node(CLAIM, MACHINE)
    node_labels = node["metadata"]["labels"]
    assert node["metadata"]["name"] == "local-ws1-0"
    assert node_labels["apps"] == "phi" and node_labels["kaito.sh/workspace"] == "ws"
    assert node_labels["node.kubernetes.io/instance-type"] == "Standard_NC6s_v3"
    assert node_labels["kubernetes.io/hostname"] == "local-ws1-0"
    assert node_labels["nvidia.com/gpu.count"] == "1" and node_labels["nvidia.com/gpu.product"] == "NVIDIA-A100"
    status = provisioner.build_node_status(MACHINE)
    assert status["capacity"]["nvidia.com/gpu"] == "1" and status["capacity"]["cpu"] == "8"
    claim_status = provisioner.build_claim_status(CLAIM, "local-ws1-0", MACHINE)
    ready = next(c for c in claim_status["conditions"] if c["type"] == "Ready")
    assert "Standard_NC6s_v3 cannot be honoured" in ready["message"] and "1 × NVIDIA-A100" in ready["message"]
    cpu_only = provisioner.build_node(CLAIM, provisioner.MachineFacts("h", 2, 2**30))
    assert "nvidia.com/gpu.count" not in cpu_only["metadata"]["labels"]


def test_nvidia_smi_output_is_parsed():
    text = "NVIDIA H100 80GB HBM3, 81559\nNVIDIA H100 80GB HBM3, 81559\n\n"
    assert provisioner.parse_nvidia_smi(text) == (provisioner.GPUInfo("NVIDIA-H100-80GB-HBM3", 81559),) * 2
    assert provisioner.parse_nvidia_smi("garbage") == ()


def _workload(kind: str, *containers: dict, init: tuple[dict, ...] = ()) -> dict:
    return {"kind": kind, "spec": {"template": {"spec": {"initContainers": list(init), "containers": list(containers)}}}}


def test_which_containers_of_a_workload_need_a_cluster(tmp_path):
    """`kaito apply`'s question, answered by the runner with the rules it runs pods by."""
    from kaito.cluster.local import runner

    def is_runtime(image: str) -> bool:
        return image.startswith("kaito-runtime")

    (tmp_path / "docker.io" / "me" / "tools" / "v1").mkdir(parents=True)  # a local image
    trainer, web = {"name": "trainer", "image": "kaito-runtime:1"}, {"name": "web", "image": "nginx:1.27"}
    pusher, local = {"name": "pusher", "image": "busybox:1"}, {"name": "tools", "image": "docker.io/me/tools:v1"}

    def needing(workload: dict) -> list[str]:
        found = runner.find_containers_needing_cluster(workload, is_runtime_image=is_runtime, images_root=tmp_path)
        return [c["name"] for c in found]

    assert needing(_workload("Deployment", trainer, web, init=(local,))) == ["web"]
    assert needing(_workload("Job", pusher, init=(trainer,))) == []  # a Job's push sidecar copies locally
    assert needing(_workload("Deployment", pusher)) == ["pusher"]  # only a Job has a push sidecar
    assert needing({"kind": "Service", "spec": {"ports": []}}) == []


def test_local_endpoint_and_logs_are_read_from_the_runners_annotations(tmp_path):
    import json

    from kaito.cluster.local import runner

    log = tmp_path / "p.log"
    log.write_text("hello\n")

    def pod(ready: bool, ports: dict, log_path: str = "") -> dict:
        return {"metadata": {"annotations": {runner.ANNOTATION_PORTS: json.dumps(ports), runner.ANNOTATION_LOG: log_path}},
                "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}

    pods_ = [pod(False, {"5000": 1}, str(log)), pod(True, {"5000": 2}, str(tmp_path / "gone.log")), pod(True, {})]
    assert runner.find_local_endpoint(pods_) == "http://127.0.0.1:2"
    assert runner.find_pod_logs(pods_) == [log]  # the missing file and the pod without one are skipped


def _vllm_container() -> dict:
    """The container of a KAITO v0.12 vLLM pod, as the controller builds it."""
    from kaito.manifests import vllm
    from tests.unit.manifests import vllm_cases

    return vllm.build_container(vllm_cases.CASES["vllm-single-gpu"])


def test_a_vllm_pod_runs_in_the_vllm_interpreter_with_local_cache_and_ports():
    container = _vllm_container()
    assert pods.is_vllm_container(container)
    mapping = {"/mnt/config": "/state/config", "/workspace/weights": "/state/pod/weights"}
    argv = pods.build_argv(container, mapping, ports={5000: 41000, 5557: 41001}, has_gpu=False,
                           python="/venvs/vllm/bin/python", model_cache="/cache/hub")
    assert argv[:3] == ["/venvs/vllm/bin/python", "-m", "kaito.runtime.inference"]
    assert {"--port=41000", "--host=127.0.0.1", "--download-dir=/cache/hub",
            "--kaito-config-file=/state/config/inference_config.yaml",
            '--kv-events-config={"enable_kv_cache_events":true,"endpoint":"tcp://127.0.0.1:41001"}'} <= set(argv)


def test_only_vllm_model_servers_are_vllm_containers():
    transformers = {"command": ["python", "-m", "kaito.runtime.inference"], "args": ["--engine=transformers"]}
    spaced = {"command": ["python3", "-m", "kaito.runtime.inference", "--engine", "vllm"]}
    multinode = {"command": ["python", "-m", "kaito.runtime.inference.multinode"], "args": ["run", "--",
                                                                                            "--engine=vllm"]}
    tuning = {"command": ["python", "-m", "kaito.runtime.tuning"], "args": ["--engine=vllm"]}
    assert [pods.is_vllm_container(c) for c in (transformers, spaced, multinode, tuning, {"command": ["sh"]})] == [
        False, True, True, False, False]


def test_kv_events_endpoint_is_left_alone_when_it_names_no_container_port():
    container = {"command": ["python", "-m", "x"], "args": [
        '--kv-events-config={"enable_kv_cache_events":true,"endpoint":"tcp://*:7000"}',
        '--kv-events-config={"enable_kv_cache_events":false}', "--kv-events-config", "not json"]}
    argv = pods.build_argv(container, {}, ports={5557: 41001}, has_gpu=False)
    assert argv[3:] == container["args"]


def test_the_vllm_interpreter_is_chosen_in_order_and_checked(tmp_path, monkeypatch):
    from kaito.cluster.local import vllm_runtime

    with pytest.raises(vllm_runtime.VllmPythonError, match="--vllm-python /nowhere/python: no such file"):
        vllm_runtime.find_vllm_runtime("/nowhere/python", {})
    # This interpreter (the test suite's .venv) has no vLLM: named, it is refused saying so.
    with pytest.raises(vllm_runtime.VllmPythonError, match="vLLM is not installed in it"):
        vllm_runtime.find_vllm_runtime(None, {vllm_runtime.ENV_VLLM_PYTHON: sys.executable})
    chosen = vllm_runtime.find_vllm_runtime(None, {})
    assert chosen == vllm_runtime.NO_VLLM and not chosen.available  # nothing guessed from the folders
    fake = tmp_path / "python"  # an interpreter whose vLLM check passes
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    found = vllm_runtime.find_vllm_runtime(str(fake), {vllm_runtime.ENV_VLLM_PYTHON: "/ignored"})
    assert (found.python, found.source, found.available) == (str(fake), "--vllm-python", True)
    assert vllm_runtime.find_vllm_runtime(None, {vllm_runtime.ENV_VLLM_PYTHON: str(fake)}).source == "KAITO_VLLM_PYTHON"
    record = vllm_runtime.build_configmap(found)
    assert vllm_runtime.parse_configmap(record) == found
    assert vllm_runtime.parse_configmap(vllm_runtime.build_configmap(chosen)) == chosen
