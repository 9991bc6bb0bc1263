"""KAITO v0.12's vLLM workload (§2): one StatefulSet for any node count, a pod-0 Service, a headless one.

Inputs are resolved values, not a Workspace of some served version: the owner, the preset, the
node's GPUs, the node count, the names of the ConfigMap, Secret and adapters. So these builders
serve the v1beta1 hub type and an InferenceSet's children alike, and the same inputs always give
the same objects.

What the pod gets, as in KAITO v0.12: `/health` probes with a startup budget sized by the weights
(§2.3); the weights in `model-weights-volume` at `/workspace/weights` (a PVC template on a local
NVMe class when the caller names one, else an emptyDir); `HF_TOKEN` from the model-access Secret;
the `inference.config` ConfigMap at `/mnt/config`; adapters under `/mnt/adapter`, served by vLLM as
LoRA modules named after their folders. KAITO's in-probe GuideLLM benchmark is not built: it holds a
pod out of Ready for a minute of synthetic load and needs GuideLLM in the image; `BenchmarkCompleted`
can come later from a separate Job without delaying readiness.

A failed start writes a JSON termination message (`terminationMessagePolicy: FallbackToLogsOnError`
keeps the log tail when there is none), which the controller can turn into a condition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaito.api import labels
from kaito.api.hub import AdapterSpec
from kaito.catalog.presets import Preset
from kaito.catalog.skus import GPUConfig
from kaito.manifests import adapters, ownership, placement, service
from kaito.manifests import vllm_command as cmd

SHM_VOLUME = "dshm"
WEIGHTS_VOLUME = "model-weights-volume"
CONFIG_VOLUME = "config-volume"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
KV_EVENTS_PORT = 5557
DASHBOARD_PORT = 8265
PROBE_PERIOD_S = 10
HF_TOKEN_KEY = "HF_TOKEN"


@dataclass(frozen=True, kw_only=True)
class VllmInputs:
    owner: ownership.Owner  # the Workspace (or InferenceSet child) these objects belong to
    preset: Preset
    image: str
    gpu: GPUConfig | None = None  # the node's GPUs; None: unknown SKU, the preset's GPU count
    node_count: int = 1  # status.targetNodeCount
    revision: int | str | None = None
    served_model_name: str | None = None  # None: KAITO's name from the repo id
    config_map: str | None = None  # inference.config
    model_access_secret: str | None = None  # presetOptions.modelAccessSecret (key HF_TOKEN)
    adapters: tuple[AdapterSpec, ...] = ()
    match_labels: Mapping[str, str] = field(default_factory=dict)  # resource.labelSelector.matchLabels
    node_names: tuple[str, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    load_balancer: bool = False  # kaito.sh/enablelb: "True"
    performance_mode: str | None = None  # kaito.sh/performance-mode
    weights_storage_class: str | None = None  # e.g. kaito-local-nvme-disk when the node has NVMe

    @property
    def name(self) -> str:
        return self.owner.name

    @property
    def gpus_per_node(self) -> int:
        return self.gpu.gpu_count if self.gpu is not None else self.preset.gpu.count

    @property
    def parallelism(self) -> cmd.Parallelism:
        return cmd.plan_parallelism(gpus_per_node=self.gpus_per_node, node_count=self.node_count,
                                    weights_gib=self.preset.model.weights_gib,
                                    gpu_memory_gib=self.gpu.per_gpu_memory_gib if self.gpu else None)


def compute_startup_budget_s(weights_gib: float | None) -> int:
    """§2.3: max(30 min, 15 min + 18 s per GiB of weights), at most 180 min; 30 min when unknown."""
    if not weights_gib:
        return 30 * 60
    return int(min(180 * 60, max(30 * 60, 15 * 60 + 18 * weights_gib)))


def _labels(inputs: VllmInputs) -> dict[str, str]:
    return {labels.LABEL_WORKSPACE_NAME: inputs.name, labels.LABEL_WORKSPACE_NAMESPACE: inputs.owner.namespace}


def _selector(inputs: VllmInputs) -> dict[str, str]:
    return {labels.LABEL_WORKSPACE_NAME: inputs.name}


def _metadata(inputs: VllmInputs, name: str, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": inputs.owner.namespace, "labels": _labels(inputs),
                            "ownerReferences": [ownership.build_owner_reference_to(inputs.owner)]}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def build_args(inputs: VllmInputs) -> dict[str, Any]:
    preset = inputs.preset
    repo = preset.hf.repo if preset.hf is not None else cmd.WEIGHTS_DIR
    params = cmd.build_server_params(
        model=repo, revision=preset.hf.revision if preset.hf is not None else None,
        served_name=inputs.served_model_name or cmd.served_model_name(repo), dtype=preset.dtype,
        trust_remote_code=preset.trust_remote_code, parallelism=inputs.parallelism,
        gpu_model=inputs.gpu.gpu_model if inputs.gpu else "", config_file=inputs.config_map is not None,
        has_adapters=adapters.has_adapters(inputs.adapters), performance_mode=inputs.performance_mode)
    return cmd.build_command(params, name=inputs.name, namespace=inputs.owner.namespace, node_count=inputs.node_count)


def build_probes(inputs: VllmInputs) -> dict[str, Any]:
    startup_failures = math.ceil(compute_startup_budget_s(inputs.preset.model.weights_gib) / PROBE_PERIOD_S)
    if inputs.node_count <= 1:
        def http(**extra: int) -> dict[str, Any]:
            return {"httpGet": {"path": "/health", "port": service.SERVER_PORT}, "periodSeconds": PROBE_PERIOD_S,
                    **extra}

        return {"startupProbe": http(failureThreshold=startup_failures),
                "livenessProbe": http(initialDelaySeconds=0, failureThreshold=3),
                "readinessProbe": http(initialDelaySeconds=30)}

    def run(mode: str, **extra: int) -> dict[str, Any]:
        # exec probes start Python: 5 s, not KAITO's 1 s, so a busy node does not fail them spuriously
        return {"exec": {"command": cmd.build_probe_command(mode, name=inputs.name, namespace=inputs.owner.namespace)},
                "periodSeconds": PROBE_PERIOD_S, "timeoutSeconds": 5, **extra}

    return {"startupProbe": run("readiness", failureThreshold=startup_failures),
            "livenessProbe": {**run("liveness", initialDelaySeconds=60, failureThreshold=1),
                              "terminationGracePeriodSeconds": 1},
            "readinessProbe": run("readiness", initialDelaySeconds=0, failureThreshold=1)}


def build_env(inputs: VllmInputs) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "VLLM_USE_FLASHINFER_SAMPLER", "value": "0"},
                                 {"name": "VLLM_USE_DEEP_GEMM", "value": "0"}]
    if inputs.model_access_secret:
        env.append({"name": HF_TOKEN_KEY, "valueFrom": {"secretKeyRef": {
            "name": inputs.model_access_secret, "key": HF_TOKEN_KEY, "optional": True}}})
    if inputs.node_count > 1:
        env.append({"name": "POD_INDEX", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{POD_INDEX_LABEL}']"}}})
    return env


def build_container(inputs: VllmInputs) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [{"name": SHM_VOLUME, "mountPath": "/dev/shm"},
                                    {"name": WEIGHTS_VOLUME, "mountPath": cmd.WEIGHTS_DIR}]
    if inputs.config_map:
        mounts.append({"name": CONFIG_VOLUME, "mountPath": cmd.CONFIG_DIR, "readOnly": True})
    mounts += adapters.build_adapter_volume_mounts(inputs.adapters)
    return {
        "name": inputs.name,
        "image": inputs.image,
        **build_args(inputs),
        "env": build_env(inputs),
        "ports": [{"name": "http", "containerPort": service.SERVER_PORT, "protocol": "TCP"},
                  {"name": "kv-events", "containerPort": KV_EVENTS_PORT, "protocol": "TCP"}],
        "resources": placement.build_gpu_resources(inputs.gpus_per_node),
        **build_probes(inputs),
        "volumeMounts": mounts,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def build_pod_spec(inputs: VllmInputs) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}}]
    if inputs.weights_storage_class is None:
        volumes.append({"name": WEIGHTS_VOLUME, "emptyDir": {}})
    if inputs.config_map:
        volumes.append({"name": CONFIG_VOLUME, "configMap": {"name": inputs.config_map}})
    volumes += adapters.build_adapter_volumes(inputs.adapters)
    spec: dict[str, Any] = {"containers": [build_container(inputs)], "tolerations": placement.build_tolerations(),
                            "volumes": volumes}
    init = adapters.build_adapter_init_containers(inputs.adapters)
    if init:
        spec["initContainers"] = init
    match = {k: v for k, v in inputs.match_labels.items() if k not in labels.RESERVED_SELECTOR_KEYS}
    affinity = placement.build_label_affinity(match, inputs.node_names)
    if affinity:
        spec["affinity"] = affinity
    secrets = list(dict.fromkeys([*inputs.image_pull_secrets, *adapters.build_adapter_pull_secrets(inputs.adapters)]))
    if secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in secrets]
    return spec


def build_statefulset(inputs: VllmInputs) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": inputs.node_count,
        "selector": {"matchLabels": _selector(inputs)},
        "serviceName": f"{inputs.name}-headless",
        "podManagementPolicy": "Parallel",
        "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Retain", "whenDeleted": "Delete"},
        "template": {"metadata": {"labels": _labels(inputs)}, "spec": build_pod_spec(inputs)},
    }
    if inputs.weights_storage_class is not None:
        spec["volumeClaimTemplates"] = [{
            "metadata": {"name": WEIGHTS_VOLUME},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": inputs.weights_storage_class,
                     "resources": {"requests": {"storage": inputs.preset.disk}}}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": _metadata(inputs, inputs.name, ownership.build_revision_annotations(inputs.revision)),
            "spec": spec}


def build_service(inputs: VllmInputs) -> dict[str, Any]:
    """`<ws>`: pod 0 only (it serves HTTP; in multi-node it is the Ray head), KAITO's four ports."""
    ports = [{"name": "http", "port": service.HTTP_PORT, "targetPort": service.SERVER_PORT, "protocol": "TCP"},
             {"name": "ray", "port": cmd.RAY_PORT, "targetPort": cmd.RAY_PORT, "protocol": "TCP"},
             {"name": "dashboard", "port": DASHBOARD_PORT, "targetPort": DASHBOARD_PORT, "protocol": "TCP"}]
    if not inputs.load_balancer:  # KAITO exposes KV-cache events inside the cluster only
        ports.append({"name": "kv-events", "port": KV_EVENTS_PORT, "targetPort": KV_EVENTS_PORT, "protocol": "TCP"})
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(inputs, inputs.name),
            "spec": {"type": "LoadBalancer" if inputs.load_balancer else "ClusterIP",
                     "selector": {**_selector(inputs), service.POD_NAME_LABEL: f"{inputs.name}-0"},
                     "ports": ports, "publishNotReadyAddresses": True}}


def build_headless_service(inputs: VllmInputs) -> dict[str, Any]:
    """`<ws>-headless`: a stable DNS name per pod (the Ray head's address); always made, as in KAITO."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(inputs, f"{inputs.name}-headless"),
            "spec": {"clusterIP": "None", "selector": _selector(inputs), "publishNotReadyAddresses": True}}


def build_vllm_objects(inputs: VllmInputs) -> list[dict[str, Any]]:
    """Services first (as KAITO orders them), then the StatefulSet."""
    return [build_service(inputs), build_headless_service(inputs), build_statefulset(inputs)]
