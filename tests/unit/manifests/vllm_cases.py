"""Resolved inputs of KAITO v0.12's vLLM pods, one per shape (inputs of tests/golden/vllm/*.yaml), and
the model-server flags a rendered pod runs (what the runtime-contract tests parse)."""

from __future__ import annotations

from kaito.api.hub import AdapterSpec
from kaito.catalog.presets import get_preset
from kaito.catalog.skus import lookup_sku
from kaito.manifests import vllm
from kaito.manifests.ownership import Owner
from kaito.runtime.inference import multinode

IMAGE = "registry.test/kaito/kaito-runtime:0.1.0"


def owner(name: str, namespace: str = "default") -> Owner:
    return Owner(api_version="kaito.sh/v1beta1", kind="Workspace", name=name, namespace=namespace,
                 uid="0b5f6c2e-1111-4a8e-9d3c-000000000012")


def adapter(name: str, **source) -> AdapterSpec:
    return AdapterSpec.model_validate({"source": {"name": name, **source}})


CASES: dict[str, vllm.VllmInputs] = {
    # One A100: TP 1, the runtime-parameter ConfigMap, HF_TOKEN from the model-access Secret, weights on NVMe.
    "vllm-single-gpu": vllm.VllmInputs(
        owner=owner("workspace-phi-4-mini"), preset=get_preset("phi-4-mini-instruct"), image=IMAGE,
        gpu=lookup_sku("Standard_NC24ads_A100_v4", "azure"), revision=1, config_map="phi-4-mini-params",
        model_access_secret="hf-token", match_labels={"apps": "phi-4-mini", "kaito.sh/workspace": "x"},
        weights_storage_class="kaito-local-nvme-disk"),
    # Four A100s, a 7 GiB model: KAITO's data parallelism (4 replicas of TP 1), CPU KV offload off.
    "vllm-multi-gpu-data-parallel": vllm.VllmInputs(
        owner=owner("workspace-phi-4-mini-dp"), preset=get_preset("phi-4-mini-instruct"), image=IMAGE,
        gpu=lookup_sku("Standard_NC96ads_A100_v4", "azure"), match_labels={"apps": "phi-4-mini"}),
    # Four A100s, a 78 GiB model: tensor parallelism over the node's GPUs.
    "vllm-multi-gpu-tensor-parallel": vllm.VllmInputs(
        owner=owner("workspace-falcon-40b", "team-a"), preset=get_preset("falcon-40b-instruct"), image=IMAGE,
        gpu=lookup_sku("Standard_NC96ads_A100_v4", "azure"), match_labels={"apps": "falcon-40b"},
        node_names=("aks-ws-0", )),
    # Two nodes of two A10s: TP 2 × PP 2 over Ray, exec probes, POD_INDEX, LoadBalancer, A10 memory share.
    "vllm-multi-node": vllm.VllmInputs(
        owner=owner("workspace-phi-4", "team-a"), preset=get_preset("phi-4"), image=IMAGE,
        gpu=lookup_sku("Standard_NV72ads_A10_v5", "azure"), node_count=2, load_balancer=True,
        match_labels={"apps": "phi-4"}, node_names=("node-b", "node-a")),
    # Adapters from an image and a volume, served as LoRA modules; KAITO's throughput mode.
    "vllm-adapters": vllm.VllmInputs(
        owner=owner("workspace-phi-3-adapters"), preset=get_preset("phi-3-mini-4k-instruct"), image=IMAGE,
        gpu=lookup_sku("Standard_NC24ads_A100_v4", "azure"), performance_mode="throughput",
        adapters=(adapter("phi-3-adapter", image="myregistry.azurecr.io/adapters/phi-3-adapter:0.0.1",
                          imagePullSecrets=["adapter-secret"]),
                  adapter("tuned-dolly", volumeSource={"persistentVolumeClaim": {"claimName": "adapters-pvc"}})),
        image_pull_secrets=("runtime-secret",), match_labels={"apps": "phi-3"}),
}


def server_args(inputs: vllm.VllmInputs) -> list[str]:
    container = vllm.build_container(inputs)
    if inputs.node_count <= 1:
        assert container["command"] == ["python", "-m", "kaito.runtime.inference"]
        return container["args"]
    assert container["command"] == ["python", "-m", "kaito.runtime.inference.multinode"]
    assert "POD_INDEX" in {e["name"] for e in container["env"]}  # the kubelet expands $(POD_INDEX) from it
    run = multinode.build_parser().parse_args([a.replace("$(POD_INDEX)", "1") for a in container["args"]])
    assert run.command == "run" and run.nodes == inputs.node_count and run.ray_port == 6379 and run.pod_index == 1
    assert run.leader_address == f"{inputs.name}-0.{inputs.name}-headless.{inputs.owner.namespace}.svc.cluster.local"
    return multinode.build_server_command(run.server)[3:]
