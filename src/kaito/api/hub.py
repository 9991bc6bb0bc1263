"""The hub Workspace: the one version-neutral type the rest of kaito speaks.

Every served version (`kaito.api.v1alpha1`, `kaito.api.v1beta1`) converts to and from this type
losslessly, so the controller, the manifests and the admission rules are written once. The hub
holds the union of every version's fields; JSON names are KAITO's (it has no `spec:` wrapper either),
so a hub dumps to the same shape as the wire objects, minus `apiVersion` and `kind`.

Defaults that differ between versions (v1alpha1's instanceType) are applied by the wire module that
parsed the object; `default_workspace` here fills only what every version defaults alike.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kaito.api.meta import Condition, KaitoModel, LabelSelector, ObjectMeta

GROUP = "kaito.sh"
KIND = "Workspace"

DEFAULT_COUNT = 1
DEFAULT_ACCESS_MODE = "public"
DEFAULT_ADAPTER_STRENGTH = "1.0"  # what a missing strength means to the runtime (KAITO's in-memory default)
PARTITION_MODES = ("mig", "accelerator")


class PartitionSpec(KaitoModel):
    mode: str
    profile: str | None = None
    count: int | None = None


class ResourceSpec(KaitoModel):
    count: int | None = None
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
    access_mode: str | None = Field(default=None, alias="accessMode")
    preset_options: PresetOptions | None = Field(default=None, alias="presetOptions")


class DataSource(KaitoModel):
    name: str | None = None
    urls: list[str] | None = None
    volume_source: dict[str, Any] | None = Field(default=None, alias="volumeSource")
    image: str | None = None
    image_pull_secrets: list[str] | None = Field(default=None, alias="imagePullSecrets")


class DataDestination(KaitoModel):
    volume_source: dict[str, Any] | None = Field(default=None, alias="volumeSource")
    image: str | None = None
    image_push_secret: str | None = Field(default=None, alias="imagePushSecret")


class AdapterSpec(KaitoModel):
    source: DataSource | None = None
    strength: str | None = None


class InferenceSpec(KaitoModel):
    preset: PresetSpec | None = None
    template: dict[str, Any] | None = None
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
    """`state` takes `kaito.api.conditions.WorkspaceState` values."""

    worker_nodes: list[str] | None = Field(default=None, alias="workerNodes")
    state: str | None = None
    conditions: list[Condition] | None = None
    target_node_count: int | None = Field(default=None, alias="targetNodeCount")
    performance: Performance | None = None


class Workspace(KaitoModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    resource: ResourceSpec | None = None
    inference: InferenceSpec | None = None
    tuning: TuningSpec | None = None
    status: WorkspaceStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.annotations or {})

    def preset(self) -> PresetSpec | None:
        """The preset this Workspace serves or tunes (None for a template Workspace)."""
        spec = self.inference if self.inference is not None else self.tuning
        return spec.preset if spec is not None else None


def _missing_shared_defaults(ws: Workspace) -> bool:
    if ws.resource is not None and ws.resource.count is None:
        return True
    return any(spec is not None and spec.preset is not None and spec.preset.access_mode is None
               for spec in (ws.inference, ws.tuning))


def default_workspace(ws: Workspace) -> Workspace:
    """`ws` with the defaults every served version shares (count 1, accessMode public).

    The input is not changed: a deep copy gets the defaults, and a Workspace that has them all is
    returned as it is (hubs are never changed in place outside these defaulting functions, and a
    deep copy of every Workspace read made validating a large file ten times slower).
    Version-specific defaults (v1alpha1's instanceType and adapter strength) are the wire module's
    business, applied when it parses or converts.
    """
    if not _missing_shared_defaults(ws):
        return ws
    out = ws.model_copy(deep=True)
    if out.resource is not None and out.resource.count is None:
        out.resource.count = DEFAULT_COUNT
    for spec in (out.inference, out.tuning):
        if spec is not None and spec.preset is not None and spec.preset.access_mode is None:
            spec.preset.access_mode = DEFAULT_ACCESS_MODE
    return out
