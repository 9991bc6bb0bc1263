"""The command line of a vLLM pod (KAITO v0.12 §2.4), running our runtime instead of KAITO's script.

KAITO starts `python3 /workspace/vllm/inference_api.py --k=v ...` with the flags in Go map order (random);
we start `python -m kaito.runtime.inference --engine=vllm` with the same flags, sorted, so the same
inputs always give the same pod. Our runtime reads KAITO's wrapper flags (`--kaito-config-file`,
`--kaito-kv-cache-cpu-memory-utilization`) and hands every vLLM flag to vLLM's own parser.

Deliberate differences: `--model` keeps the preset's repo id as written (our presets pin a revision,
sent as `--revision`), and the served name is KAITO's (lower-cased repo leaf). Multi-node pods run
`kaito.runtime.inference.multinode` (Ray head on pod 0, Ray workers elsewhere) instead of vLLM's
example shell script; the pod ordinal reaches it through `$(POD_INDEX)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaito.manifests import adapters, service

RUNTIME_MODULE = "kaito.runtime.inference"
MULTINODE_MODULE = "kaito.runtime.inference.multinode"
WEIGHTS_DIR = "/workspace/weights"
CONFIG_DIR = "/mnt/config"
CONFIG_FILE = f"{CONFIG_DIR}/inference_config.yaml"  # KAITO's key in the inference.config ConfigMap
RAY_PORT = 6379
GPU_MEMORY_UTILIZATION = "0.84"
GPU_MEMORY_UTILIZATION_A10 = "0.82"  # KAITO leaves more headroom on the 24 GiB A10
KV_EVENTS_CONFIG = '{"enable_kv_cache_events":true}'
PERFORMANCE_MODES = ("interactivity", "throughput")  # `balanced` is vLLM's default: no flag


@dataclass(frozen=True, kw_only=True)
class Parallelism:
    tensor: int = 1
    pipeline: int = 1
    data: int = 1

    @property
    def multi_node(self) -> bool:
        return self.pipeline > 1

    @property
    def cpu_kv_offload_off(self) -> bool:
        """KAITO turns LMCache CPU offload off for data parallelism and multi-node pipelines."""
        return self.data > 1 or self.pipeline > 1


def plan_parallelism(*, gpus_per_node: int, node_count: int, weights_gib: float | None,
                     gpu_memory_gib: float | None) -> Parallelism:
    """KAITO's `configureParallelism`: N nodes → TP=G × PP=N; one node → TP=G, or DP=G when a copy
    of the weights fits twice in one GPU (many small replicas beat one sharded model)."""
    gpus = max(gpus_per_node, 1)
    if node_count > 1:
        return Parallelism(tensor=gpus, pipeline=node_count)
    if gpus > 1 and weights_gib and gpu_memory_gib and weights_gib * gpus * 2 < gpu_memory_gib * gpus:
        return Parallelism(data=gpus)
    return Parallelism(tensor=gpus)


def served_model_name(repo: str) -> str:
    """KAITO's served name: the lower-cased last segment of the Hub id (`phi-4-mini-instruct`)."""
    return repo.rstrip("/").split("/")[-1].lower()


def format_flags(params: Mapping[str, str]) -> list[str]:
    """`--k=v` (a bare `--k` for an empty value), sorted by key."""
    return [f"--{k}={v}" if v != "" else f"--{k}" for k, v in sorted(params.items())]


def build_server_params(*, model: str, revision: str | None, served_name: str, dtype: str,
                        trust_remote_code: bool, parallelism: Parallelism, gpu_model: str = "",
                        config_file: bool = False, has_adapters: bool = False,
                        performance_mode: str | None = None) -> dict[str, str]:
    """The flags of `python -m kaito.runtime.inference` for a vLLM pod."""
    params = {
        "engine": "vllm",
        "model": model,
        "served-model-name": served_name,
        "max-model-len": "auto",  # vLLM fits the context to the memory left; a config-file value wins
        "gpu-memory-utilization": GPU_MEMORY_UTILIZATION_A10 if gpu_model.endswith("A10") else GPU_MEMORY_UTILIZATION,
        "kv-events-config": KV_EVENTS_CONFIG,
        "compilation-config.pass_config.fuse_allreduce_rms": "False",
        "download-dir": WEIGHTS_DIR,
        "dtype": dtype if dtype in ("bfloat16", "float16", "auto") else "bfloat16",
        "tensor-parallel-size": str(parallelism.tensor),
        "host": "0.0.0.0",
        "port": str(service.SERVER_PORT),
    }
    if revision:
        params["revision"] = revision
    if trust_remote_code:
        params["trust-remote-code"] = ""
    if parallelism.data > 1:
        params["data-parallel-size"] = str(parallelism.data)
    if parallelism.multi_node:
        params["pipeline-parallel-size"] = str(parallelism.pipeline)
        params["distributed-executor-backend"] = "ray"
    if parallelism.cpu_kv_offload_off:
        params["kaito-kv-cache-cpu-memory-utilization"] = "0"
    if config_file:
        params["kaito-config-file"] = CONFIG_FILE
    if has_adapters:
        params["adapters-dir"] = adapters.ADAPTERS_DIR
    if performance_mode in PERFORMANCE_MODES:
        params["performance-mode"] = performance_mode
    return params


def leader_address(name: str, namespace: str) -> str:
    """Pod 0's stable DNS name behind the headless Service: the Ray head."""
    return f"{name}-0.{name}-headless.{namespace}.svc.cluster.local"


def build_command(params: Mapping[str, str], *, name: str, namespace: str, node_count: int) -> dict[str, Any]:
    """`command`/`args` (exec form: no shell, so JSON values need no quoting)."""
    server = format_flags(params)
    if node_count <= 1:
        return {"command": ["python", "-m", RUNTIME_MODULE], "args": server}
    return {
        "command": ["python", "-m", MULTINODE_MODULE],
        "args": ["run", "--pod-index=$(POD_INDEX)", f"--nodes={node_count}",
                 f"--leader-address={leader_address(name, namespace)}", f"--ray-port={RAY_PORT}", "--", *server],
    }


def build_probe_command(mode: str, *, name: str, namespace: str) -> list[str]:
    """Multi-node exec probe: pod 0 answers for the server, the others for their Ray worker."""
    return ["python", "-m", MULTINODE_MODULE, "probe", mode, f"--leader-address={leader_address(name, namespace)}",
            f"--port={service.SERVER_PORT}", f"--ray-port={RAY_PORT}"]
