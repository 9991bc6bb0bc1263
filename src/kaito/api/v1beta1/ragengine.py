"""`kaito.sh/v1beta1` RAGEngine, field for field as KAITO v0.12 declares it (the storage version).

A `spec:` wrapper; `compute` is the v1beta1 Workspace `resource` (count 1 by default); storage is
nested (`persistentVolume`, `vectorDB`); `guardrails` is new. v1alpha1's `queryServiceName` and
`indexServiceName` have no place here: they ride in the `conversion.kaito.sh/hub-fields` annotation.
`persistentVolumeClaim` is optional in the model (a v1alpha1 object may name only a mount path) and
required by the CRD and by v1beta1 admission, as in KAITO.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kaito.api import lossless
from kaito.api import ragengine as hub_rag
from kaito.api.meta import Condition, KaitoModel, ObjectMeta
from kaito.api.v1beta1.types import API_VERSION, ResourceSpec

KIND = hub_rag.KIND
_WIRE_ONLY = ("apiVersion", "kind")
STASHED = (
    lossless.Stashed("spec.queryServiceName", anchor=1),
    lossless.Stashed("spec.indexServiceName", anchor=1),
)


class PersistentVolumeConfig(KaitoModel):
    persistent_volume_claim: str | None = Field(default=None, alias="persistentVolumeClaim")
    mount_path: str | None = Field(default=None, alias="mountPath")


class VectorDBConfig(KaitoModel):
    engine: str  # not an enum in KAITO's CRD either: admission names the engines we run
    url: str
    access_secret: str | None = Field(default=None, alias="accessSecret")


class StorageSpec(KaitoModel):
    persistent_volume: PersistentVolumeConfig | None = Field(default=None, alias="persistentVolume")
    vector_db: VectorDBConfig | None = Field(default=None, alias="vectorDB")


class RemoteEmbeddingSpec(KaitoModel):
    url: str
    access_secret: str | None = Field(default=None, alias="accessSecret")


class LocalEmbeddingSpec(KaitoModel):
    image: str | None = None
    image_pull_secret: str | None = Field(default=None, alias="imagePullSecret")
    model_id: str | None = Field(default=None, alias="modelID")
    model_access_secret: str | None = Field(default=None, alias="modelAccessSecret")


class EmbeddingSpec(KaitoModel):
    remote: RemoteEmbeddingSpec | None = None
    local: LocalEmbeddingSpec | None = None


class InferenceServiceSpec(KaitoModel):
    url: str | None = None
    access_secret: str | None = Field(default=None, alias="accessSecret")
    context_window_size: int = Field(alias="contextWindowSize")


class ConfigMapReference(KaitoModel):
    name: str


class GuardrailsSpec(KaitoModel):
    enabled: bool | None = None
    config_map_ref: ConfigMapReference | None = Field(default=None, alias="configMapRef")


class RAGEngineSpec(KaitoModel):
    compute: ResourceSpec | None = None
    storage: StorageSpec | None = None
    embedding: EmbeddingSpec | None = None  # required (CRD and admission), reported by admission
    inference_service: InferenceServiceSpec | None = Field(default=None, alias="inferenceService")
    guardrails: GuardrailsSpec | None = None


class RAGEngineStatus(KaitoModel):
    worker_nodes: list[str] | None = Field(default=None, alias="workerNodes")
    conditions: list[Condition] | None = None


class RAGEngine(KaitoModel):
    api_version: Literal["kaito.sh/v1beta1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["RAGEngine"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RAGEngineSpec | None = None
    status: RAGEngineStatus | None = None


def to_hub(obj: RAGEngine) -> hub_rag.RAGEngine:
    data = obj.model_dump(by_alias=True, exclude_none=True)
    for key in _WIRE_ONLY:
        data.pop(key, None)
    lossless.restore(data, STASHED, ())
    return hub_rag.default_ragengine(hub_rag.RAGEngine.model_validate(data))


def from_hub(obj: hub_rag.RAGEngine) -> RAGEngine:
    data = obj.model_dump(by_alias=True, exclude_none=True)
    lossless.stash(data, STASHED, ())
    return RAGEngine.model_validate(data)
