"""The `kaito.sh/v1alpha1` Workspace, field for field as KAITO v0.3.2 declares it (plus v0.12's `inference.config`).

No `spec:` wrapper: `resource`, `inference` and `tuning` sit beside `metadata` and `status`, so a
KAITO user's YAML parses unchanged. Defaults that KAITO's CRD applies on the API server (count 1,
instanceType Standard_NC12s_v3, accessMode public) and the adapter strength "1.0" that its webhook
applies in memory are applied at parse, so every consumer sees the same values.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kaito.api.meta import Condition, KaitoModel, LabelSelector, ObjectMeta

GROUP = "kaito.sh"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Workspace"

DEFAULT_COUNT = 1
DEFAULT_INSTANCE_TYPE = "Standard_NC12s_v3"
DEFAULT_ACCESS_MODE = "public"
DEFAULT_ADAPTER_STRENGTH = "1.0"

AccessMode = Literal["public", "private"]


class ResourceSpec(KaitoModel):
    count: int | None = DEFAULT_COUNT
    instance_type: str | None = Field(default=DEFAULT_INSTANCE_TYPE, alias="instanceType")
    label_selector: LabelSelector = Field(alias="labelSelector")
    preferred_nodes: list[str] | None = Field(default=None, alias="preferredNodes")


class PresetOptions(KaitoModel):
    image: str | None = None
    image_pull_secrets: list[str] | None = Field(default=None, alias="imagePullSecrets")


class PresetSpec(KaitoModel):
    name: str
    access_mode: AccessMode | None = Field(default=DEFAULT_ACCESS_MODE, alias="accessMode")
    preset_options: PresetOptions | None = Field(default=None, alias="presetOptions")


class DataSource(KaitoModel):
    name: str | None = None
    urls: list[str] | None = None
    volume_source: dict[str, Any] | None = Field(default=None, alias="volumeSource")  # schemaless
    image: str | None = None
    image_pull_secrets: list[str] | None = Field(default=None, alias="imagePullSecrets")


class DataDestination(KaitoModel):
    volume_source: dict[str, Any] | None = Field(default=None, alias="volumeSource")  # schemaless
    image: str | None = None
    image_push_secret: str | None = Field(default=None, alias="imagePushSecret")


class AdapterSpec(KaitoModel):
    source: DataSource | None = None
    strength: str | None = DEFAULT_ADAPTER_STRENGTH


class InferenceSpec(KaitoModel):
    preset: PresetSpec | None = None
    template: dict[str, Any] | None = None  # a PodTemplateSpec, schemaless as in KAITO
    config: str | None = None  # KAITO v0.12's v1alpha1 has it too: the runtime-parameter ConfigMap
    adapters: list[AdapterSpec] | None = None


class TuningSpec(KaitoModel):
    preset: PresetSpec | None = None
    method: str | None = None
    config: str | None = None
    input: DataSource | None = None
    output: DataDestination | None = None


class WorkspaceStatus(KaitoModel):
    worker_nodes: list[str] | None = Field(default=None, alias="workerNodes")
    conditions: list[Condition] | None = None


class Workspace(KaitoModel):
    api_version: Literal["kaito.sh/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Workspace"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    resource: ResourceSpec | None = None
    inference: InferenceSpec | None = None
    tuning: TuningSpec | None = None
    status: WorkspaceStatus | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workspace:
        """Parse a JSON-shaped dict; raises pydantic.ValidationError naming each bad field."""
        return cls.model_validate(data)

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

