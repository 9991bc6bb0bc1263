"""Inference workloads for preset Workspaces: a Deployment on one node, a StatefulSet across nodes.

Everything the pod needs is decided here from resolved inputs (preset, GPU facts of the node,
chosen nodes, revision, image settings) that the controller's plan has looked up, so the same
inputs always give the same object and `kaito render` shows exactly what the controller applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from kaito.api import labels
from kaito.api.hub import Workspace
from kaito.catalog.presets import Preset
from kaito.manifests import adapters, images, inference_command, ownership, placement, service

SHM_VOLUME = "dshm"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
PROBE_PERIOD_S = 10


class GPUFacts(Protocol):
    """The part of a SKU's GPU configuration the pod needs (`kaito.catalog.skus.GPUConfig`)."""

    @property
    def gpu_count(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class InferenceInputs:
    workspace: Workspace
    preset: Preset
    gpu: GPUFacts | None = None  # the node's GPUs; None: unknown SKU, request the preset's count
    node_names: tuple[str, ...] = ()  # nodes chosen for the workspace, empty when rendering
    revision: int | None = None
    images: images.ImageSettings = field(default_factory=images.ImageSettings)
    engine: str | None = None  # None: admission's choice from catalog facts (`inference_command.choose_engine`)
    max_model_len: int | None = None

    @property
    def node_count(self) -> int:
        resource = self.workspace.resource
        return (resource.count if resource is not None and resource.count else None) or 1

    @property
    def gpu_count(self) -> int:
        return self.gpu.gpu_count if self.gpu is not None else self.preset.gpu.count

    @property
    def multi_node(self) -> bool:
        """KAITO makes a StatefulSet for every preset that supports distributed inference."""
        return self.preset.distributed


def build_image(inputs: InferenceInputs) -> tuple[str, list[str]]:
    """Image and pull secrets: the private image and its secrets, or our runtime image; adapters'
    secrets are added in both cases (KAITO dropped them for private presets, breaking adapters)."""
    ws = inputs.workspace
    preset_spec = ws.inference.preset if ws.inference else None
    adapter_secrets = adapters.build_adapter_pull_secrets(ws.inference.adapters if ws.inference else None)
    options = preset_spec.preset_options if preset_spec else None
    if preset_spec is not None and preset_spec.access_mode == "private" and options and options.image:
        secrets = [*(options.image_pull_secrets or ()), *adapter_secrets]
        return options.image, list(dict.fromkeys(secrets))
    return images.build_runtime_image(inputs.images, inputs.preset), list(dict.fromkeys(adapter_secrets))


def _build_probes(preset: Preset, engine: str) -> dict[str, Any]:
    # KAITO's llama-2 server only answers /healthz; ours answers /health (alive) and /healthz (ready).
    live_path = "/healthz" if engine == inference_command.LLAMA2_RUNTIME else "/health"

    def probe(path: str, **extra: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": service.SERVER_PORT}, "periodSeconds": PROBE_PERIOD_S, **extra}

    # A startup probe sized by the preset's readiness timeout replaces KAITO's fixed 600 s liveness
    # delay: big models get their whole download/load time, small ones are not held back.
    startup_failures = max(1, math.ceil(preset.inference.readiness_timeout_s / PROBE_PERIOD_S))
    return {
        "startupProbe": probe(live_path, failureThreshold=startup_failures),
        "livenessProbe": probe(live_path, failureThreshold=3),
        "readinessProbe": probe("/healthz", failureThreshold=3),
    }


def _build_rank_env(inputs: InferenceInputs) -> list[dict[str, Any]]:
    """Rank and rendezvous for a multi-node StatefulSet: the ordinal comes from the pod-index label."""
    ws = inputs.workspace
    return [
        {"name": "NNODES", "value": str(inputs.node_count)},
        {"name": "NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{POD_INDEX_LABEL}']"}}},
        {"name": "MASTER_ADDR", "value": inference_command.pod0_address(ws)},
        {"name": "MASTER_PORT", "value": str(service.TORCH_PORT)},
    ]


def build_model_access_env(ws: Workspace) -> list[dict[str, Any]]:
    """`HF_TOKEN` from `presetOptions.modelAccessSecret` (KAITO v0.12 §1.4): optional, so a Secret
    that is missing or lacks the key leaves the variable unset rather than blocking the pod."""
    preset = ws.inference.preset if ws.inference is not None else None
    secret = preset.preset_options.model_access_secret if preset and preset.preset_options else None
    if not secret:
        return []
    ref = {"name": secret, "key": labels.HF_TOKEN_KEY, "optional": True}
    return [{"name": labels.HF_TOKEN_KEY, "valueFrom": {"secretKeyRef": ref}}]


def build_config_volume(ws: Workspace) -> list[dict[str, Any]]:
    """The `inference.config` ConfigMap as volume `config-volume` (none when it names none)."""
    name = ws.inference.config if ws.inference is not None else None
    return [{"name": inference_command.CONFIG_VOLUME, "configMap": {"name": name}}] if name else []


def build_container(inputs: InferenceInputs) -> dict[str, Any]:
    ws, preset = inputs.workspace, inputs.preset
    engine = inference_command.choose_engine(ws, preset, inputs.engine)
    if engine == inference_command.LLAMA2_RUNTIME:
        command = inference_command.build_llama2_command(ws, preset, node_count=inputs.node_count)
    else:
        command = inference_command.build_runtime_command(
            ws, preset, engine=engine, gpu_count=inputs.gpu_count, max_model_len=inputs.max_model_len
        )
    image, _ = build_image(inputs)
    adapter_specs = ws.inference.adapters if ws.inference else None
    env = adapters.build_adapter_env(adapter_specs) + build_model_access_env(ws)
    if inputs.multi_node:
        env += _build_rank_env(inputs)
    mounts = [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}, *adapters.build_adapter_volume_mounts(adapter_specs)]
    if build_config_volume(ws):
        mounts.append({"name": inference_command.CONFIG_VOLUME, "mountPath": inference_command.CONFIG_DIR,
                       "readOnly": True})
    container: dict[str, Any] = {
        "name": ws.name,
        "image": image,
        **command,
        "ports": [{"name": "http", "containerPort": service.SERVER_PORT, "protocol": "TCP"}],
        "resources": placement.build_gpu_resources(inputs.gpu_count),
        **_build_probes(preset, engine),
        "volumeMounts": mounts,
    }
    if env:
        container["env"] = env
    return container


def build_pod_spec(inputs: InferenceInputs) -> dict[str, Any]:
    ws = inputs.workspace
    adapter_specs = ws.inference.adapters if ws.inference else None
    _, secrets = build_image(inputs)
    # Always a memory-backed /dev/shm: torch's data loaders and NCCL use it even on one node.
    volumes: list[dict[str, Any]] = [
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}},
        *adapters.build_adapter_volumes(adapter_specs),
        *build_config_volume(ws),
    ]
    spec: dict[str, Any] = {
        "containers": [build_container(inputs)],
        "tolerations": placement.build_tolerations(),
        "volumes": volumes,
    }
    init = adapters.build_adapter_init_containers(adapter_specs)
    if init:
        spec["initContainers"] = init
    affinity = placement.build_node_affinity(ws, inputs.node_names)
    if affinity:
        spec["affinity"] = affinity
    if secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in secrets]
    return spec


def _pod_template(inputs: InferenceInputs) -> dict[str, Any]:
    return {
        "metadata": {"labels": ownership.build_workspace_labels(inputs.workspace)},
        "spec": build_pod_spec(inputs),
    }


def build_deployment(inputs: InferenceInputs) -> dict[str, Any]:
    """Single-node presets: one replica per node; surge 0 because GPU nodes have no spare room."""
    ws = inputs.workspace
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": ownership.build_metadata(
            ws, ws.name, annotations=ownership.build_revision_annotations(inputs.revision)
        ),
        "spec": {
            "replicas": inputs.node_count,
            "selector": {"matchLabels": ownership.build_selector_labels(ws)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": _pod_template(inputs),
        },
    }


def build_statefulset(inputs: InferenceInputs) -> dict[str, Any]:
    """Multi-node presets: ordinal pods `<ws>-0…` started together (rank 0 serves HTTP)."""
    ws = inputs.workspace
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": ownership.build_metadata(
            ws, ws.name, annotations=ownership.build_revision_annotations(inputs.revision)
        ),
        "spec": {
            "replicas": inputs.node_count,
            "selector": {"matchLabels": ownership.build_selector_labels(ws)},
            "serviceName": service.headless_service_name(ws),
            "podManagementPolicy": "Parallel",
            "template": _pod_template(inputs),
        },
    }


def build_inference_workload(inputs: InferenceInputs) -> dict[str, Any]:
    return build_statefulset(inputs) if inputs.multi_node else build_deployment(inputs)


def build_inference_objects(inputs: InferenceInputs) -> list[dict[str, Any]]:
    """Services first (as KAITO orders them), then the workload."""
    objects = [service.build_service(inputs.workspace, multi_node=inputs.multi_node)]
    if inputs.multi_node:
        objects.append(service.build_headless_service(inputs.workspace))
    objects.append(build_inference_workload(inputs))
    return objects
