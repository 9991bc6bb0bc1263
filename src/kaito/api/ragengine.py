"""The hub RAGEngine: a retrieval-augmented service in front of a model (kaito-v0.12.md §4).

The one version-neutral type the rest of kaito speaks; `kaito.api.v1alpha1.ragengine` and
`kaito.api.v1beta1.ragengine` convert to and from it without loss. It holds the union of both
versions: v1beta1's nested `storage.persistentVolume`, `storage.vectorDB` and `guardrails`, and
v1alpha1's `queryServiceName`/`indexServiceName` (which v1beta1 carries in the conversion
annotation). KAITO declares this conversion but never wires it; here it is served.
"""

from __future__ import annotations

from pydantic import Field

from kaito.api import hub
from kaito.api.meta import Condition, KaitoModel, ObjectMeta

GROUP = hub.GROUP
KIND = "RAGEngine"
PLURAL = "ragengines"

LABEL_RAGENGINE = "kaito.sh/ragengine"  # selects the service's pods (§4.2)
LABEL_RAGENGINE_NAMESPACE = "kaito.sh/ragenginenamespace"
ANNOTATION_REVISION = "ragengine.kaito.io/revision"
FINALIZER = "ragengine.finalizer.kaito.sh"

# Conditions (§4.2; KAITO uses different types for the service's success and failure).
CONDITION_NODE_CLAIM_READY = "NodeClaimReady"
CONDITION_RESOURCE_READY = "ResourceReady"
CONDITION_SERVICE_READY = "ServiceReady"
CONDITION_SERVICE_FAILED = "RAGEngineServiceReady"
CONDITION_SUCCEEDED = "RAGEngineSucceeded"
CONDITION_DELETING = "RAGEngineDeleting"
REASON_SUCCEEDED = "ragengineSucceeded"
REASON_FAILED = "ragengineFailed"
REASON_DELETED = "ragengineDeleted"
REASON_SERVICE_SUCCESS = "RAGEngineServiceSuccess"
REASON_SERVICE_FAILED = "RAGEngineServiceStatusFailed"

VECTOR_DB_ENGINES = ("faiss", "qdrant")  # what the service runs; KAITO checks nothing and crashes later
DEFAULT_VECTOR_DB_ENGINE = "faiss"
DEFAULT_MOUNT_PATH = "/mnt/data"
DEFAULT_GUARDRAILS_CONFIGMAP = "ragengine-guardrails-policy-template"  # in the release namespace
GUARDRAILS_POLICY_KEY = "guardrails.yaml"
# Secret keys the service's environment takes (KAITO's names).
SECRET_KEY_VECTOR_DB = "VECTOR_DB_ACCESS_SECRET"
SECRET_KEY_LLM = "LLM_ACCESS_SECRET"


class PersistentVolumeConfig(KaitoModel):
    persistent_volume_claim: str | None = Field(default=None, alias="persistentVolumeClaim")
    mount_path: str | None = Field(default=None, alias="mountPath")


class VectorDBConfig(KaitoModel):
    engine: str
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
    compute: hub.ResourceSpec | None = None
    storage: StorageSpec | None = None
    embedding: EmbeddingSpec | None = None
    inference_service: InferenceServiceSpec | None = Field(default=None, alias="inferenceService")
    guardrails: GuardrailsSpec | None = None
    query_service_name: str | None = Field(default=None, alias="queryServiceName")  # v1alpha1 only
    index_service_name: str | None = Field(default=None, alias="indexServiceName")  # v1alpha1 only


class RAGEngineStatus(KaitoModel):
    worker_nodes: list[str] | None = Field(default=None, alias="workerNodes")
    conditions: list[Condition] | None = None


class RAGEngine(KaitoModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RAGEngineSpec | None = None
    status: RAGEngineStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.annotations or {})


def default_ragengine(obj: RAGEngine) -> RAGEngine:
    """A copy with the defaults both versions share (compute `count` 1)."""
    out = obj.model_copy(deep=True)
    if out.spec is not None and out.spec.compute is not None and out.spec.compute.count is None:
        out.spec.compute.count = hub.DEFAULT_COUNT
    return out


def vector_db_engine(obj: RAGEngine) -> str:
    """The engine the service runs: `storage.vectorDB.engine`, lower-cased, else FAISS in-process."""
    storage = obj.spec.storage if obj.spec is not None else None
    if storage is None or storage.vector_db is None:
        return DEFAULT_VECTOR_DB_ENGINE
    return storage.vector_db.engine.strip().lower()
