"""The command line of the inference container.

Presets served by our runtime run `python -m kaito.runtime.inference` with typed flags (model,
pinned revision, served name, dtype, device, engine, adapters dir, port) followed by KAITO's own
model-run flags from the preset (`--pipeline`, `--torch_dtype`, `--trust_remote_code`), which the
runtime accepts for compatibility. Flags are sorted where KAITO iterated a Go map, so the same
inputs always give the same command (KAITO's order was random, §10 note 5).

Presets whose runtime is `llama-2` are KAITO's private Meta-reference images: our runtime is not
inside them, so they get KAITO's own torchrun command. Its rendezvous address is pod 0's stable
DNS name behind the headless Service rather than the Service ClusterIP KAITO used, which means the
workload can be built without first reading the Service back from the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaito.api import inferenceset
from kaito.api.admission import AdmissionOptions
from kaito.api.hub import Workspace
from kaito.api.validation import compute_runtime
from kaito.api.validation.inference_config import CONFIG_KEY as INFERENCE_CONFIG_KEY
from kaito.catalog import facts as catalog_facts
from kaito.catalog.presets import Preset
from kaito.manifests import adapters, service

RUNTIME_MODULE = "kaito.runtime.inference"
LLAMA2_RUNTIME = "llama-2"
# Where weights live inside a private image that has no Hub source.
IMAGE_WEIGHTS_DIR = "/workspace/weights"
# `inference.config` (KAITO v0.12 §1.3): ConfigMap volume `config-volume` at /mnt/config, read by the
# runtime through `--kaito-config-file` (KAITO passes it to vLLM only; ours reads it on every engine).
CONFIG_VOLUME = "config-volume"
CONFIG_DIR = "/mnt/config"
CONFIG_FILE = f"{CONFIG_DIR}/{INFERENCE_CONFIG_KEY}"


def format_flags(params: Mapping[str, str]) -> list[str]:
    """KAITO's `--k=v` (or bare `--k` for an empty value), in key order."""
    return [f"--{k}={v}" if v != "" else f"--{k}" for k, v in sorted(params.items())]


def pod0_address(ws: Workspace) -> str:
    """Stable DNS name of rank 0 (StatefulSet pod `<ws>-0` behind `<ws>-headless`)."""
    return f"{ws.name}-0.{service.headless_service_name(ws)}.{ws.namespace}.svc.cluster.local"


def choose_engine(ws: Workspace, preset: Preset, requested: str | None = None, *, cloud: str = "azure",
                  provision_nodes: bool = True) -> str:
    """The runtime engine: `requested` when the caller already chose it, else admission's choice
    (`kaito.api.validation.compute_runtime`: `kaito.sh/runtime` when the preset supports it, else
    the preset's first runtime, vLLM for a model larger than one node's GPU memory), so the pods
    run the runtime admission judged.

    Callers that know more (the controller: BYO nodes' GPUs; models sized from the local cache)
    compute it with their facts and pass it as `requested`; alone, this looks up catalog facts only.
    """
    if requested:
        return requested
    facts = catalog_facts.build_catalog_facts(cloud, read_local_sizes=False)
    runtime = compute_runtime(ws, facts, AdmissionOptions(auto_provisioning=provision_nodes))
    return runtime if runtime in preset.runtimes else preset.runtimes[0]


def served_model_name(ws: Workspace, preset: Preset) -> str:
    """The model's name in the API: the preset's, or an InferenceSet child's set name (KAITO
    v0.12), so that every replica of a set answers to one model name behind one endpoint."""
    return (ws.metadata.labels or {}).get(inferenceset.LABEL_CREATED_BY) or preset.name


def build_runtime_args(
    ws: Workspace,
    preset: Preset,
    *,
    engine: str,
    gpu_count: int,
    max_model_len: int | None = None,
) -> list[str]:
    """Flags for `python -m kaito.runtime.inference`."""
    model = preset.hf.repo if preset.hf is not None else IMAGE_WEIGHTS_DIR
    args = [f"--model={model}"]
    if preset.hf is not None and preset.hf.revision:
        args.append(f"--revision={preset.hf.revision}")
    args += [
        f"--served-model-name={served_model_name(ws, preset)}",
        f"--dtype={preset.dtype}",
        f"--device={'cuda' if gpu_count > 0 else 'cpu'}",
        f"--engine={engine}",
        "--host=0.0.0.0",
        f"--port={service.SERVER_PORT}",
    ]
    if ws.inference is not None and adapters.has_adapters(ws.inference.adapters):
        args.append(f"--adapters-dir={adapters.ADAPTERS_DIR}")
    if max_model_len:
        args.append(f"--max-model-len={max_model_len}")
    if ws.inference is not None and ws.inference.config:
        args.append(f"--kaito-config-file={CONFIG_FILE}")
    run_params = dict(preset.inference.model_run_params)
    if preset.trust_remote_code:
        run_params.setdefault("trust_remote_code", "")
    return args + format_flags(run_params)


def build_runtime_command(
    ws: Workspace, preset: Preset, *, engine: str, gpu_count: int, max_model_len: int | None = None
) -> dict[str, Any]:
    """`command`/`args` of the container running our runtime (exec form, no shell)."""
    return {
        "command": ["python", "-m", RUNTIME_MODULE],
        "args": build_runtime_args(ws, preset, engine=engine, gpu_count=gpu_count, max_model_len=max_model_len),
    }


def build_llama2_command(ws: Workspace, preset: Preset, *, node_count: int) -> dict[str, Any]:
    """KAITO's torchrun command for its private llama-2 images (§3.2), copying the preset's maps."""
    launch = preset.inference
    torchrun = dict(launch.launcher_params)
    rdzv = dict(launch.rdzv_params)
    if preset.distributed:
        # The model's shards (world size) are split evenly over the nodes, even on a single node.
        torchrun.update(nnodes=str(node_count), nproc_per_node=str(max(1, launch.world_size // node_count)))
    if preset.distributed and node_count > 1:
        torchrun.update(
            # The StatefulSet ordinal is the last dash-separated part of the pod's hostname.
            node_rank="$(echo $HOSTNAME | grep -o '[^-]*$')",
            master_addr=pod0_address(ws),
            master_port=str(service.TORCH_PORT),
        )
        rdzv.update(rdzv_endpoint=f"{pod0_address(ws)}:{service.TORCH_PORT}", rdzv_id="job")
    parts = [launch.base_command, *format_flags(torchrun), *format_flags(rdzv), "inference_api.py"]
    parts += format_flags(launch.model_run_params)
    return {"command": ["/bin/sh", "-c", " ".join(p for p in parts if p)]}
