"""The `kaito.sh/v1beta1` Workspace, field for field as KAITO v0.12 declares it (the storage version).

No `spec:` wrapper, as in v1alpha1. New against v1alpha1: `resource.partition`,
`presetOptions.modelAccessSecret`, `inference.config` (also accepted by our v1alpha1, as by KAITO
v0.12's), `status.state`, `status.targetNodeCount` and `status.performance`. The CRD's defaults are
applied at parse (count 1, accessMode public); unlike v1alpha1 there is **no** instanceType default
(node auto-provisioning requires one, BYO nodes forbid one) and no adapter-strength default (the vLLM
runtime refuses any strength).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kaito.api.meta import Condition, KaitoModel, LabelSelector, ObjectMeta

GROUP = "kaito.sh"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Workspace"

DEFAULT_COUNT = 1
DEFAULT_ACCESS_MODE = "public"

AccessMode = Literal["public", "private"]
PartitionMode = Literal["mig", "accelerator"]


class PartitionSpec(KaitoModel):
    mode: PartitionMode
    profile: str | None = None
    count: int | None = Field(default=None, ge=1)


class ResourceSpec(KaitoModel):
    count: int | None = DEFAULT_COUNT
    instance_type: str | None = Field(default=None, alias="instanceType")
    label_selector: LabelSelector = Field(alias="labelSelector")
    preferred_nodes: list[str] | None = Field(default=None, alias="preferredNodes")
    partition: PartitionSpec | None = None


class PresetOptions(KaitoModel):
    image: str | None = None
    image_pull_secrets: list[str] | None = Field(default=None, alias="imagePullSecrets")
    model_access_secret: str | None = Field(default=None, alias="modelAccessSecret")


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
    strength: str | None = None


class InferenceSpec(KaitoModel):
    preset: PresetSpec | None = None
    template: dict[str, Any] | None = None  # a PodTemplateSpec, schemaless as in KAITO
    config: str | None = None
    adapters: list[AdapterSpec] | None = None


class TuningSpec(KaitoModel):
    preset: PresetSpec | None = None
    method: str | None = None
    config: str | None = None
    input: DataSource | None = None
    output: DataDestination | None = None


class Metric(KaitoModel):
    description: str
    value: str
    unit: str | None = None
    config: dict[str, str] | None = None


class Performance(KaitoModel):
    metrics: dict[str, Metric] | None = None


class WorkspaceStatus(KaitoModel):
    worker_nodes: list[str] | None = Field(default=None, alias="workerNodes")
    state: str | None = None
    conditions: list[Condition] | None = None
    target_node_count: int | None = Field(
        default=None, alias="targetNodeCount", json_schema_extra={"format": "int32"}
    )
    performance: Performance | None = None


class Workspace(KaitoModel):
    api_version: Literal["kaito.sh/v1beta1"] = Field(default=API_VERSION, alias="apiVersion")
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


def default_workspace(ws: Workspace) -> Workspace:
    """`ws` with v1beta1's CRD defaults where a value is missing (objects built in code); a deep copy
    when one is missing, else `ws` itself (see `kaito.api.hub.default_workspace`)."""
    missing = (ws.resource is not None and ws.resource.count is None) or any(
        spec is not None and spec.preset is not None and spec.preset.access_mode is None
        for spec in (ws.inference, ws.tuning))
    if not missing:
        return ws
    out = ws.model_copy(deep=True)
    if out.resource is not None and out.resource.count is None:
        out.resource.count = DEFAULT_COUNT
    for spec in (out.inference, out.tuning):
        if spec is not None and spec.preset is not None and spec.preset.access_mode is None:
            spec.preset.access_mode = DEFAULT_ACCESS_MODE
    return out
