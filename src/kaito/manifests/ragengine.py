"""The objects a RAGEngine runs as (kaito-v0.12.md §4.2): Service, Deployment, and a GPU NodeClaim.

The pod runs `python -m kaito.runtime.rag` from our runtime image, configured through the
environment contract of `kaito.runtime.rag.settings` — the same names the service reads. KAITO's
controller sets `EMBEDDING_TYPE`/`MODEL_ID`/`ACCESS_SECRET` while its service reads other names, so
`spec.embedding` is ignored there and every engine embeds locally with one model; here remote
embedding gets `REMOTE_EMBEDDING_URL` and its token, a gated local model gets `HF_TOKEN`, and every
secret is a `secretKeyRef` (KAITO passed one secret's *name* as a literal). Secret keys: `HF_TOKEN`
(as for Workspaces), and for the others the variable's own name, as KAITO's `LLM_ACCESS_SECRET` and
`VECTOR_DB_ACCESS_SECRET` are.

Storage: volume `vector-db-storage` at `mountPath` (default /mnt/data) — the claim when one is named,
else an emptyDir, always mounted (KAITO mounts none without `spec.storage`) so snapshots survive a
container restart; indexes persist under `<mountPath>/<rag>`. A NodeClaim only when
`compute.instanceType` names a GPU SKU; the container asks for those GPUs only when it embeds locally.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from kaito.api import hub, labels, ragengine
from kaito.api.meta import ObjectMeta
from kaito.manifests import images, nodeclaim, ownership, placement, service

CONTAINER_PORT = service.SERVER_PORT
RUNTIME_MODULE = "kaito.runtime.rag"
STORAGE_VOLUME = "vector-db-storage"
SHM_VOLUME = "dshm"
NODE_DISK = "200Gi"  # KAITO's RAG node OS disk
PROBE_PERIOD_S = 10
STARTUP_BUDGET_S = 600  # KAITO's liveness delay: the embedding model downloads and loads before the port opens
TERMINATION_GRACE_S = 60  # time to persist every index on stop
CPU_REQUESTS = {"cpu": "500m", "memory": "512Mi"}  # KAITO's, when no GPU is asked for
# Secret keys (README: "RAGEngine secrets").
KEY_HF_TOKEN = labels.HF_TOKEN_KEY
KEY_REMOTE_EMBEDDING = "REMOTE_EMBEDDING_ACCESS_SECRET"


class GPUFacts(Protocol):
    """The part of a SKU's GPUs the pod needs (`kaito.api.facts.GpuFacts`, `kaito.catalog.skus.GPUConfig`)."""

    @property
    def gpu_count(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class RAGEngineInputs:
    ragengine: ragengine.RAGEngine
    images: images.ImageSettings = field(default_factory=images.ImageSettings)
    gpu: GPUFacts | None = None  # the GPUs of compute.instanceType's node; None: not a GPU SKU (or unknown)
    revision: int | None = None
    inference_url: str | None = None  # the endpoint resolved by the controller; None: spec's url
    cloud: nodeclaim.Cloud = "azure"
    provision_nodes: bool = True  # False: bring-your-own nodes, never a NodeClaim

    @property
    def gpu_count(self) -> int:
        return self.gpu.gpu_count if self.gpu is not None else 0

    @property
    def local_embedding(self) -> bool:
        spec = self.ragengine.spec
        return spec is not None and spec.embedding is not None and spec.embedding.local is not None


def build_labels(obj: ragengine.RAGEngine) -> dict[str, str]:
    return {ragengine.LABEL_RAGENGINE: obj.name, ragengine.LABEL_RAGENGINE_NAMESPACE: obj.namespace}


def _metadata(obj: ragengine.RAGEngine, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": obj.name, "namespace": obj.namespace, "labels": build_labels(obj),
        "ownerReferences": [{"apiVersion": f"{ragengine.GROUP}/v1beta1", "kind": ragengine.KIND, "name": obj.name,
                             "uid": obj.metadata.uid or ownership.PLACEHOLDER_UID, "controller": True,
                             "blockOwnerDeletion": True}],
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def mount_path(obj: ragengine.RAGEngine) -> str:
    storage = obj.spec.storage if obj.spec is not None else None
    volume = storage.persistent_volume if storage is not None else None
    return (volume.mount_path if volume is not None else None) or ragengine.DEFAULT_MOUNT_PATH


def _secret(name: str, key: str, secret: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def build_env(inputs: RAGEngineInputs) -> list[dict[str, Any]]:
    """The service's settings (`kaito.runtime.rag.settings`), one variable per spec field."""
    obj = inputs.ragengine
    spec = obj.spec or ragengine.RAGEngineSpec()
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
    ]
    emb = spec.embedding
    if emb is not None and emb.remote is not None:
        env += [{"name": "EMBEDDING_TYPE", "value": "remote"}, {"name": "REMOTE_EMBEDDING_URL", "value": emb.remote.url}]
        if emb.remote.access_secret:
            env.append(_secret("REMOTE_EMBEDDING_ACCESS_SECRET", KEY_REMOTE_EMBEDDING, emb.remote.access_secret))
    else:
        env.append({"name": "EMBEDDING_TYPE", "value": "local"})
        local = emb.local if emb is not None else None
        if local is not None and local.model_id:
            env.append({"name": "MODEL_ID", "value": local.model_id})
        if local is not None and local.model_access_secret:
            env.append(_secret("HF_TOKEN", KEY_HF_TOKEN, local.model_access_secret))
    env.append({"name": "VECTOR_DB_TYPE", "value": ragengine.vector_db_engine(obj)})
    db = spec.storage.vector_db if spec.storage is not None else None
    if db is not None and db.url:
        env.append({"name": "VECTOR_DB_URL", "value": db.url})
    if db is not None and db.access_secret:
        env.append(_secret("VECTOR_DB_ACCESS_SECRET", ragengine.SECRET_KEY_VECTOR_DB, db.access_secret))
    env.append({"name": "DEFAULT_VECTOR_DB_PERSIST_DIR", "value": f"{mount_path(obj).rstrip('/')}/{obj.name}"})
    svc = spec.inference_service
    url = inputs.inference_url or (svc.url if svc is not None else None)
    if url:
        env.append({"name": "LLM_INFERENCE_URL", "value": url})
    if svc is not None:
        if svc.access_secret:
            env.append(_secret("LLM_ACCESS_SECRET", ragengine.SECRET_KEY_LLM, svc.access_secret))
        env.append({"name": "LLM_CONTEXT_WINDOW", "value": str(svc.context_window_size)})
    return env


def _probes() -> dict[str, Any]:
    def probe(**extra: int) -> dict[str, Any]:
        return {"httpGet": {"path": "/health", "port": CONTAINER_PORT}, "periodSeconds": PROBE_PERIOD_S, **extra}

    # A startup probe instead of KAITO's 600 s liveness delay: a small embedder is ready in seconds.
    return {"startupProbe": probe(failureThreshold=math.ceil(STARTUP_BUDGET_S / PROBE_PERIOD_S)),
            "livenessProbe": probe(failureThreshold=3), "readinessProbe": probe(failureThreshold=3)}


def _compute_workspace(obj: ragengine.RAGEngine) -> hub.Workspace | None:
    """`spec.compute` is a Workspace `resource`: the placement and NodeClaim helpers take it as one."""
    compute = obj.spec.compute if obj.spec is not None else None
    if compute is None:
        return None
    return hub.Workspace(metadata=ObjectMeta(name=obj.name, namespace=obj.namespace), resource=compute)


def build_container(inputs: RAGEngineInputs) -> dict[str, Any]:
    obj = inputs.ragengine
    gpus = inputs.gpu_count if inputs.local_embedding else 0
    return {
        "name": obj.name,
        "image": images.build_runtime_image(inputs.images),
        "command": ["python", "-m", RUNTIME_MODULE],
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": build_env(inputs),
        "resources": placement.build_gpu_resources(gpus) or {"requests": dict(CPU_REQUESTS)},
        **_probes(),
        "volumeMounts": [{"name": SHM_VOLUME, "mountPath": "/dev/shm"},
                         {"name": STORAGE_VOLUME, "mountPath": mount_path(obj)}],
    }


def build_deployment(inputs: RAGEngineInputs) -> dict[str, Any]:
    obj = inputs.ragengine
    spec = obj.spec or ragengine.RAGEngineSpec()
    volume = spec.storage.persistent_volume if spec.storage is not None else None
    claim = volume.persistent_volume_claim if volume is not None else None
    storage = {"persistentVolumeClaim": {"claimName": claim}} if claim else {"emptyDir": {}}
    pod: dict[str, Any] = {
        "containers": [build_container(inputs)],
        "tolerations": placement.build_tolerations(),
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "volumes": [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}}, {"name": STORAGE_VOLUME, **storage}],
    }
    proxy = _compute_workspace(obj)
    affinity = placement.build_node_affinity(proxy) if proxy is not None else None
    if affinity:
        pod["affinity"] = affinity
    revision = {ragengine.ANNOTATION_REVISION: str(inputs.revision)} if inputs.revision is not None else None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(obj, revision),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {ragengine.LABEL_RAGENGINE: obj.name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": {"metadata": {"labels": build_labels(obj)}, "spec": pod},
        },
    }


def build_service(inputs: RAGEngineInputs) -> dict[str, Any]:
    """`<rag>`: http 80 → 5000; LoadBalancer with `kaito.sh/enablelb: "True"`. Unlike KAITO, a pod
    that is not ready (still loading its embedder or restoring indexes) gets no traffic."""
    obj = inputs.ragengine
    lb = obj.annotations.get(labels.ANNOTATION_ENABLE_LB) == "True"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(obj),
        "spec": {
            "type": "LoadBalancer" if lb else "ClusterIP",
            "selector": {ragengine.LABEL_RAGENGINE: obj.name},
            "ports": [{"name": "http", "port": service.HTTP_PORT, "targetPort": CONTAINER_PORT, "protocol": "TCP"}],
        },
    }


def build_nodeclaim_name(obj: ragengine.RAGEngine) -> str:
    """Deterministic, as the Workspace's (`kaito.manifests.nodeclaim`): a restart never makes a second."""
    return f"rag{hashlib.sha256(f'{obj.namespace}/{obj.name}'.encode()).hexdigest()[:9]}-0"


def build_nodeclaim(inputs: RAGEngineInputs) -> dict[str, Any] | None:
    """A GPU node for the engine, or None: no instanceType, not a GPU SKU, or BYO nodes."""
    obj, proxy = inputs.ragengine, _compute_workspace(inputs.ragengine)
    if proxy is None or not proxy.resource.instance_type or inputs.gpu_count <= 0 or not inputs.provision_nodes:
        return None
    claim = nodeclaim.build_nodeclaim(proxy, name=build_nodeclaim_name(obj), instance_type=proxy.resource.instance_type,
                                      disk=NODE_DISK, cloud=inputs.cloud)
    claim["metadata"]["labels"] = {**ownership.placement_labels(proxy), labels.LABEL_KARPENTER_NODEPOOL:
                                   nodeclaim.KAITO_NODEPOOL, labels.LABEL_MACHINE_TYPE: "gpu", **build_labels(obj)}
    return claim


def build_ragengine_objects(inputs: RAGEngineInputs) -> list[dict[str, Any]]:
    """NodeClaim (when one is needed), Service, Deployment."""
    claim = build_nodeclaim(inputs)
    return [*([claim] if claim is not None else []), build_service(inputs), build_deployment(inputs)]
