"""The hub InferenceSet: replicas of one model server, each a child Workspace (kaito-v0.12.md §3).

Like `kaito.api.hub` for Workspaces, this is the one version-neutral type the rest of kaito speaks;
`kaito.api.v1alpha1.inferenceset` and `kaito.api.v1beta1.inferenceset` convert to and from it without
loss. Unlike a Workspace, an InferenceSet has a `spec:` wrapper.

The child Workspace a set makes for each replica is built here (`build_child_workspace`), not in
`kaito.manifests`, because admission judges exactly that Workspace with the full Workspace rules
(§3.2) and `kaito.api` may not import the builders; `kaito.manifests.inferenceset` renders it.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from pydantic import Field

from kaito.api import hub, labels
from kaito.api.meta import Condition, KaitoModel, LabelSelector, ObjectMeta, OwnerReference

GROUP = hub.GROUP
KIND = "InferenceSet"
PLURAL = "inferencesets"
STORAGE_API_VERSION = f"{GROUP}/v1beta1"  # what children's owner references name (KAITO's too)

# Labels and keys KAITO puts on a set's children and revisions (§3.3).
LABEL_CREATED_BY = "inferenceset.kaito.sh/created-by"
LABEL_INFERENCE_ROLE = "kaito.sh/inference-role"
LABEL_MULTIROLE_PARENT = "multiroleinference.kaito.sh/created-by"
LABEL_REVISION_NAME = "inferenceset.kaito.io/name"
ANNOTATION_REVISION = "inferenceset.kaito.io/revision"
ANNOTATION_HASH = "inferenceset.kaito.io/hash"
FINALIZER = "inferenceset.finalizer.kaito.sh"

# Conditions (§3.3).
CONDITION_READY = "InferenceSetReady"
CONDITION_BENCHMARK = "BenchmarkCompleted"
CONDITION_DELETING = "InferenceSetDeleting"
REASON_READY = "inferencesetReady"
REASON_NOT_READY = "inferencesetNotReady"
REASON_FAILED = "inferencesetFailed"
REASON_DELETED = "inferencesetDeleted"
REASON_BENCHMARK_PENDING = "BenchmarkPending"

DEFAULT_REPLICAS = 1
DEFAULT_UPDATE_STRATEGY: dict[str, Any] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
UPGRADE_STRATEGIES = ("InPlace", "Surge")
DEFAULT_UPGRADE_STRATEGY = "InPlace"
DEFAULT_WINDOW_DURATION = "4h"


class InferenceSetResourceSpec(KaitoModel):
    instance_type: str | None = Field(default=None, alias="instanceType")
    partition: hub.PartitionSpec | None = None


class InferenceSetTemplate(KaitoModel):
    # An ObjectMeta kept schemaless, as KAITO's CRD does; only `labels` and `annotations` are used.
    metadata: dict[str, Any] | None = None
    resource: InferenceSetResourceSpec | None = None
    inference: hub.InferenceSpec


class MaintenanceWindow(KaitoModel):
    schedule: str
    duration: str | None = None


class AutoUpgradePolicy(KaitoModel):
    enabled: bool | None = None
    strategy: str | None = None
    maintenance_window: MaintenanceWindow | None = Field(default=None, alias="maintenanceWindow")


class InferenceSetSpec(KaitoModel):
    template: InferenceSetTemplate
    replicas: int | None = None
    node_count_limit: int | None = Field(default=None, alias="nodeCountLimit")
    label_selector: LabelSelector = Field(alias="labelSelector")
    update_strategy: dict[str, Any] | None = Field(default=None, alias="updateStrategy")
    auto_upgrade: AutoUpgradePolicy | None = Field(default=None, alias="autoUpgrade")


class AutoUpgradeStatus(KaitoModel):
    num_drifted_workspaces: int | None = Field(default=None, alias="numDriftedWorkspaces")
    last_successful_upgrade_time: datetime | None = Field(default=None, alias="lastSuccessfulUpgradeTime")


class InferenceSetStatus(KaitoModel):
    replicas: int | None = None  # the desired count, as KAITO reports it (what `kubectl scale` reads)
    ready_replicas: int | None = Field(default=None, alias="readyReplicas")
    selector: str | None = None
    conditions: list[Condition] | None = None
    performance: hub.Performance | None = None
    auto_upgrade: AutoUpgradeStatus | None = Field(default=None, alias="autoUpgrade")


class InferenceSet(KaitoModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceSetSpec
    status: InferenceSetStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.annotations or {})


def default_inferenceset(obj: InferenceSet) -> InferenceSet:
    """A copy with the CRD's defaults where a value is missing (both served versions share them)."""
    out = obj.model_copy(deep=True)
    spec = out.spec
    if spec.replicas is None:
        spec.replicas = DEFAULT_REPLICAS
    if spec.update_strategy is None:
        spec.update_strategy = copy.deepcopy(DEFAULT_UPDATE_STRATEGY)
    upgrade = spec.auto_upgrade
    if upgrade is not None:
        if upgrade.enabled is None:
            upgrade.enabled = False
        if upgrade.strategy is None:
            upgrade.strategy = DEFAULT_UPGRADE_STRATEGY
        if upgrade.maintenance_window is not None and upgrade.maintenance_window.duration is None:
            upgrade.maintenance_window.duration = DEFAULT_WINDOW_DURATION
    preset = spec.template.inference.preset
    if preset is not None and preset.access_mode is None:
        preset.access_mode = hub.DEFAULT_ACCESS_MODE
    return out


def compute_selector(obj: InferenceSet) -> str:
    """`status.selector`: the label query that finds the set's children (the scale subresource's)."""
    return f"{LABEL_CREATED_BY}={obj.name}"


def string_map(value: Any) -> dict[str, str]:
    """The string-to-string entries of a schemaless map (others are reported by validation)."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def template_labels(obj: InferenceSet) -> dict[str, str]:
    return string_map((obj.spec.template.metadata or {}).get("labels"))


def template_annotations(obj: InferenceSet) -> dict[str, str]:
    return string_map((obj.spec.template.metadata or {}).get("annotations"))


def build_owner_reference(obj: InferenceSet) -> OwnerReference:
    """The controller reference each child carries (KAITO names the storage version)."""
    return OwnerReference(api_version=STORAGE_API_VERSION, kind=KIND, name=obj.name,
                          uid=obj.metadata.uid or "", controller=True, block_owner_deletion=True)


def build_child_workspace(obj: InferenceSet, *, auto_provisioning: bool = True,
                          name: str | None = None) -> hub.Workspace:
    """The Workspace the set makes for one replica (§3.3), as a defaulted hub Workspace.

    Labels: the template's, the set's role labels, and `inferenceset.kaito.sh/created-by` (which
    also makes the child's vLLM serve the model under the set's name, so clients see one model).
    Annotations: the template's; `kaito.sh/disable-benchmark: "true"` when the set disables it; the
    set's `kaito.sh/runtime` when the template names none (KAITO ignores it for children, so a set
    annotated `transformers` ran vLLM children). `name` None: `generateName: <set>-`, as KAITO.
    BYO nodes (`auto_provisioning` False) get no instanceType: the Workspace rules forbid one.
    """
    obj = default_inferenceset(obj)
    set_labels = obj.metadata.labels or {}
    child_labels = template_labels(obj)
    for key in (LABEL_INFERENCE_ROLE, LABEL_MULTIROLE_PARENT):
        if key in set_labels:
            child_labels[key] = set_labels[key]
    child_labels[LABEL_CREATED_BY] = obj.name
    annotations = template_annotations(obj)
    set_annotations = obj.annotations
    if set_annotations.get(labels.ANNOTATION_DISABLE_BENCHMARK) == "true":
        annotations[labels.ANNOTATION_DISABLE_BENCHMARK] = "true"
    if labels.ANNOTATION_RUNTIME in set_annotations:
        annotations.setdefault(labels.ANNOTATION_RUNTIME, set_annotations[labels.ANNOTATION_RUNTIME])
    template_resource = obj.spec.template.resource or InferenceSetResourceSpec()
    meta = ObjectMeta(
        name=name,
        generate_name=None if name else f"{obj.name}-",
        namespace=obj.namespace,
        labels=child_labels,
        annotations=annotations or None,
        owner_references=[build_owner_reference(obj)],
    )
    resource = hub.ResourceSpec(
        label_selector=obj.spec.label_selector.model_copy(deep=True),
        instance_type=template_resource.instance_type if auto_provisioning else None,
        partition=template_resource.partition.model_copy(deep=True) if template_resource.partition else None,
    )
    child = hub.Workspace(metadata=meta, resource=resource,
                          inference=obj.spec.template.inference.model_copy(deep=True))
    return hub.default_workspace(child)
