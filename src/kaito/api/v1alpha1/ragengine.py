"""`kaito.sh/v1alpha1` RAGEngine as KAITO v0.12 serves it, and its lossless conversion to the hub.

The shapes differ (KAITO's `ragengine_conversion.go`, which KAITO never wires into its CRD):
v1alpha1's flat `storage.persistentVolumeClaim`/`storage.mountPath` are v1beta1's nested
`storage.persistentVolume`; `queryServiceName`/`indexServiceName` exist only here. What v1alpha1
lacks (`storage.vectorDB`, `guardrails`, `compute.partition`) rides in the
`conversion.kaito.sh/hub-fields` annotation. v1alpha1's CRD defaults `compute.instanceType` to
`Standard_NC24ads_A100_v4` (v1beta1 has no default); the annotation records when it was absent, so
a round trip does not invent a GPU node.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kaito.api import lossless
from kaito.api import ragengine as hub_rag
from kaito.api.meta import Condition, KaitoModel, LabelSelector, ObjectMeta
from kaito.api.v1alpha1.types import API_VERSION, DEFAULT_COUNT
from kaito.api.v1beta1.ragengine import EmbeddingSpec

KIND = hub_rag.KIND
DEFAULT_INSTANCE_TYPE = "Standard_NC24ads_A100_v4"  # KAITO v0.12's v1alpha1 RAGEngine CRD default
_WIRE_ONLY = ("apiVersion", "kind")
STASHED = (
    lossless.Stashed("spec.compute.partition", anchor=2),
    lossless.Stashed("spec.storage.vectorDB", anchor=2),
    lossless.Stashed("spec.guardrails", anchor=1),
)
# An empty `persistentVolume` has no flat form; it is carried as it is.
_EMPTY_VOLUME = lossless.Stashed("spec.storage.persistentVolume", anchor=2)
DEFAULTED = (lossless.Defaulted("spec.compute.instanceType", DEFAULT_INSTANCE_TYPE),)


class ResourceSpec(KaitoModel):
    count: int | None = DEFAULT_COUNT
    instance_type: str | None = Field(default=DEFAULT_INSTANCE_TYPE, alias="instanceType")
    label_selector: LabelSelector = Field(alias="labelSelector")
    preferred_nodes: list[str] | None = Field(default=None, alias="preferredNodes")


class StorageSpec(KaitoModel):
    persistent_volume_claim: str | None = Field(default=None, alias="persistentVolumeClaim")
    mount_path: str | None = Field(default=None, alias="mountPath")


class InferenceServiceSpec(KaitoModel):
    # Required by v1alpha1 (admission says so); optional here so that a v1beta1 object in
    # retrieve-only mode still converts.
    url: str | None = None
    access_secret: str | None = Field(default=None, alias="accessSecret")
    context_window_size: int = Field(alias="contextWindowSize")


class RAGEngineSpec(KaitoModel):
    compute: ResourceSpec | None = None
    storage: StorageSpec | None = None
    embedding: EmbeddingSpec | None = None
    inference_service: InferenceServiceSpec | None = Field(default=None, alias="inferenceService")
    query_service_name: str | None = Field(default=None, alias="queryServiceName")
    index_service_name: str | None = Field(default=None, alias="indexServiceName")


class RAGEngineStatus(KaitoModel):
    worker_nodes: list[str] | None = Field(default=None, alias="workerNodes")
    conditions: list[Condition] | None = None


class RAGEngine(KaitoModel):
    api_version: Literal["kaito.sh/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["RAGEngine"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RAGEngineSpec | None = None
    status: RAGEngineStatus | None = None


def to_hub(obj: RAGEngine) -> hub_rag.RAGEngine:
    """Flat storage nests; carried fields come back from the annotation."""
    data = obj.model_dump(by_alias=True, exclude_none=True)
    for key in _WIRE_ONLY:
        data.pop(key, None)
    storage = (data.get("spec") or {}).get("storage")
    if isinstance(storage, dict):
        volume = {key: storage.pop(key) for key in ("persistentVolumeClaim", "mountPath") if key in storage}
        if volume:
            storage["persistentVolume"] = volume
    lossless.restore(data, (*STASHED, _EMPTY_VOLUME), DEFAULTED)
    return hub_rag.default_ragengine(hub_rag.RAGEngine.model_validate(data))


def from_hub(obj: hub_rag.RAGEngine) -> RAGEngine:
    """What v1alpha1 cannot hold goes into the annotation; the volume flattens."""
    data = obj.model_dump(by_alias=True, exclude_none=True)
    empty = lossless.get_path(data, lossless.parse_path(_EMPTY_VOLUME.path)) == {}
    lossless.stash(data, (*STASHED, _EMPTY_VOLUME) if empty else STASHED, DEFAULTED)
    storage = (data.get("spec") or {}).get("storage")
    if isinstance(storage, dict) and isinstance(storage.get("persistentVolume"), dict):
        storage.update(storage.pop("persistentVolume"))
    return RAGEngine.model_validate(data)
