"""The tuning Job (§7.1): our trainer on the Workspace's GPU node, data in, adapter out.

Inputs, by `tuning.input` kind:
- `urls`: handed to the trainer as `--data URL` (it streams them with a size limit), so no
  downloader image is needed and the same Job runs on the local cluster;
- `image`: an init container `data-extractor` copies the image's `/data` into `/mnt/data`;
- `volumeSource`: the user's volume is mounted read-only at `/mnt/data`.
Outputs, by `tuning.output` kind:
- `volumeSource`: the user's volume is mounted at the output directory; the adapter stays there;
- `image`: the trainer runs as an init container and, only when it succeeded, the `pusher`
  container packs the adapter files under `/data/` as a layer on busybox and pushes it with crane
  (credentials from `imagePushSecret`, mounted as a Docker config). The result is the image KAITO's
  adapters expect (`inference.adapters[].source.image`). Unlike KAITO's docker-in-docker sidecar,
  this needs no privileged container and no polling for a sentinel file: Kubernetes runs init
  containers to completion before the pusher starts, and a failed trainer fails the pod.
"""

from __future__ import annotations

import copy
import shlex
from dataclasses import dataclass, field
from typing import Any

from kaito.api.hub import Workspace
from kaito.catalog.presets import Preset
from kaito.manifests import images, ownership, placement, tuning_config
from kaito.manifests.inference import SHM_VOLUME, GPUFacts

RUNTIME_MODULE = "kaito.runtime.tuning"
DATA_DIR = "/mnt/data"
DATA_VOLUME = "data-volume"
RESULTS_VOLUME = "results-volume"
CONFIG_VOLUME = "config-volume"
DOCKER_CONFIG_VOLUME = "docker-config"
DOCKER_CONFIG_DIR = "/tmp/.docker/config"
PUSHER_IMAGE = "gcr.io/go-containerregistry/crane:debug"  # crane + a busybox shell
PUSH_BASE_IMAGE = "busybox:1.36"  # gives adapter images the `sh` and `cp` KAITO's init containers use
COMPLETION_MARKER = "fine_tuning_completed.txt"


@dataclass(frozen=True, kw_only=True)
class TuningInputs:
    workspace: Workspace
    preset: Preset
    gpu: GPUFacts | None = None
    node_names: tuple[str, ...] = ()
    revision: int | None = None
    images: images.ImageSettings = field(default_factory=images.ImageSettings)
    # TrainingArguments.output_dir of the mounted config; the controller reads it from a user's
    # ConfigMap, ours uses KAITO's default.
    output_dir: str = tuning_config.DEFAULT_OUTPUT_DIR

    @property
    def gpu_count(self) -> int:
        if self.gpu is not None:
            return self.gpu.gpu_count
        return self.preset.tuning.gpu.count if self.preset.tuning is not None else self.preset.gpu.count


def build_image(inputs: TuningInputs) -> tuple[str, list[str]]:
    """Trainer image and all pull secrets (input data, push secret, private preset), as KAITO."""
    tuning = inputs.workspace.tuning
    if tuning is None:
        raise ValueError("build_image needs a tuning Workspace")
    secrets: list[str] = []
    if tuning.input is not None:
        secrets += tuning.input.image_pull_secrets or []
    if tuning.output is not None and tuning.output.image_push_secret:
        secrets.append(tuning.output.image_push_secret)
    preset_spec = tuning.preset
    options = preset_spec.preset_options if preset_spec else None
    if preset_spec is not None and preset_spec.access_mode == "private" and options and options.image:
        secrets += options.image_pull_secrets or []
        image = options.image
    else:
        image = images.build_runtime_image(inputs.images, inputs.preset)
    return image, list(dict.fromkeys(secrets))


def _build_data(inputs: TuningInputs) -> tuple[list[str], list[dict], list[dict], list[dict]]:
    """(`--data` args, init containers, volumes, trainer mounts) for `tuning.input`."""
    source = inputs.workspace.tuning.input  # type: ignore[union-attr]
    if source is None:
        return [], [], [], []
    if source.urls:
        return [f"--data={url}" for url in source.urls], [], [], []
    mount = {"name": DATA_VOLUME, "mountPath": DATA_DIR}
    if source.image:
        extractor = {
            "name": "data-extractor",
            "image": source.image,
            "command": ["/bin/sh", "-c", f"ls -la /data && cp -r /data/. {DATA_DIR}/ && ls -la {DATA_DIR}"],
            "volumeMounts": [dict(mount)],
        }
        return [f"--data={DATA_DIR}"], [extractor], [{"name": DATA_VOLUME, "emptyDir": {}}], [dict(mount)]
    if source.volume_source:
        volume = {"name": DATA_VOLUME, **copy.deepcopy(source.volume_source)}
        return [f"--data={DATA_DIR}"], [], [volume], [{**mount, "readOnly": True}]
    return [], [], [], []


def build_push_script(output_dir: str, image: str, work_dir: str = "/tmp/push") -> str:
    """Shell run by the pusher: adapter files → `/data/` layer on busybox → registry, with retries."""
    return "\n".join(
        [
            "set -eu",
            f"out={shlex.quote(output_dir)}",
            f'test -f "$out/{COMPLETION_MARKER}" || {{ echo "no completed adapter in $out" >&2; exit 1; }}',
            f"work={shlex.quote(work_dir)}",
            'mkdir -p "$work/data"',
            'find "$out" -maxdepth 1 -type f -exec cp {} "$work/data/" \\;',
            'tar -C "$work" -cf "$work/adapter.tar" data',
            "for attempt in 1 2 3 4 5; do",
            f'  if crane append --base {PUSH_BASE_IMAGE} --new_layer "$work/adapter.tar" --new_tag {shlex.quote(image)}; then exit 0; fi',
            '  echo "push attempt $attempt failed; retrying in 30s" >&2',
            "  sleep 30",
            "done",
            "exit 1",
        ]
    )


def _build_output(inputs: TuningInputs) -> tuple[list[dict], dict | None, list[dict]]:
    """(volumes, pusher container or None, trainer mounts) for `tuning.output`."""
    destination = inputs.workspace.tuning.output  # type: ignore[union-attr]
    mount = {"name": RESULTS_VOLUME, "mountPath": inputs.output_dir}
    if destination is not None and destination.volume_source:
        return [{"name": RESULTS_VOLUME, **copy.deepcopy(destination.volume_source)}], None, [mount]
    volumes: list[dict[str, Any]] = [{"name": RESULTS_VOLUME, "emptyDir": {}}]
    if destination is None or not destination.image:
        return volumes, None, [mount]
    pusher: dict[str, Any] = {
        "name": "pusher",
        "image": PUSHER_IMAGE,
        "command": ["/busybox/sh", "-c", build_push_script(inputs.output_dir, destination.image)],
        "volumeMounts": [{**mount, "readOnly": True}],
    }
    if destination.image_push_secret:
        volumes.append(
            {
                "name": DOCKER_CONFIG_VOLUME,
                "projected": {
                    "sources": [
                        {
                            "secret": {
                                "name": destination.image_push_secret,
                                "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
                            }
                        }
                    ]
                },
            }
        )
        pusher["env"] = [{"name": "DOCKER_CONFIG", "value": DOCKER_CONFIG_DIR}]
        pusher["volumeMounts"].append({"name": DOCKER_CONFIG_VOLUME, "mountPath": DOCKER_CONFIG_DIR, "readOnly": True})
    return volumes, pusher, [mount]


def build_trainer_args(inputs: TuningInputs, data_args: list[str]) -> list[str]:
    preset = inputs.preset
    args = [f"--config={tuning_config.CONFIG_DIR}/{tuning_config.CONFIG_KEY}"]
    if preset.hf is not None:
        args.append(f"--model={preset.hf.repo}")
        if preset.hf.revision:
            args.append(f"--revision={preset.hf.revision}")
        # KAITO's templates say `local_files_only: true` because its images had the weights baked
        # in; our runtime image fetches them from the Hub, so a KAITO-style config would otherwise
        # fail to load the model.
        args.append("--set=ModelConfig.local_files_only=false")
    else:
        args.append("--model=/workspace/weights")
    return [
        *args,
        *data_args,
        f"--output={inputs.output_dir}",
        f"--method={tuning_config.tuning_method(inputs.workspace)}",
    ]


def build_job(inputs: TuningInputs) -> dict[str, Any]:
    ws = inputs.workspace
    image, secrets = build_image(inputs)
    data_args, init, data_volumes, data_mounts = _build_data(inputs)
    out_volumes, pusher, out_mounts = _build_output(inputs)
    trainer: dict[str, Any] = {
        "name": ws.name,
        "image": image,
        "command": ["python", "-m", RUNTIME_MODULE],
        "args": build_trainer_args(inputs, data_args),
        "env": [{"name": "PYTORCH_CUDA_ALLOC_CONF", "value": "expandable_segments:True"}],
        "resources": placement.build_gpu_resources(inputs.gpu_count),
        "volumeMounts": [
            {"name": SHM_VOLUME, "mountPath": "/dev/shm"},
            {"name": CONFIG_VOLUME, "mountPath": tuning_config.CONFIG_DIR, "readOnly": True},
            *data_mounts,
            *out_mounts,
        ],
    }
    volumes = [
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}},
        {"name": CONFIG_VOLUME, "configMap": {"name": tuning_config.config_map_name(ws)}},
        *data_volumes,
        *out_volumes,
    ]
    if pusher is not None:
        init, containers = [*init, trainer], [pusher]
    else:
        containers = [trainer]
    pod_spec: dict[str, Any] = {"restartPolicy": "Never"}
    if init:
        pod_spec["initContainers"] = init
    pod_spec["containers"] = containers
    pod_spec["tolerations"] = placement.build_tolerations()
    pod_spec["volumes"] = volumes
    affinity = placement.build_node_affinity(ws, inputs.node_names)
    if affinity:
        pod_spec["affinity"] = affinity
    if secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in secrets]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": ownership.build_metadata(ws, ws.name, annotations=ownership.build_revision_annotations(inputs.revision)),
        "spec": {
            "backoffLimit": 0,  # a failed run is reported, not silently retried on a paid GPU
            "template": {"metadata": {"labels": ownership.build_workspace_labels(ws)}, "spec": pod_spec},
        },
    }


def build_tuning_objects(inputs: TuningInputs) -> list[dict[str, Any]]:
    """The default config ConfigMap (when the user names none), then the Job."""
    config = tuning_config.build_tuning_config_map(inputs.workspace)
    return [*([config] if config else []), build_job(inputs)]
