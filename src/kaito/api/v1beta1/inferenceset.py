"""`kaito.sh/v1beta1` InferenceSet, field for field as KAITO v0.12 declares it (the storage version).

The CRD's defaults are applied at parse: `replicas` 1, `updateStrategy` RollingUpdate with
maxUnavailable 1, and inside `autoUpgrade` `enabled` false, `strategy` InPlace and a 4h window.
v1beta1 holds every hub field, so conversion is a copy.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from kaito.api import inferenceset as hub_is
from kaito.api.meta import Condition, KaitoModel, LabelSelector, ObjectMeta
from kaito.api.v1beta1.types import API_VERSION, InferenceSpec, PartitionSpec, Performance

KIND = hub_is.KIND
_WIRE_ONLY = ("apiVersion", "kind")


class InferenceSetResourceSpec(KaitoModel):
    instance_type: str | None = Field(default=None, alias="instanceType")
    partition: PartitionSpec | None = None


class InferenceSetTemplate(KaitoModel):
    # metav1.ObjectMeta, schemaless (x-kubernetes-preserve-unknown-fields) as in KAITO's CRD.
    metadata: dict[str, Any] | None = None
    resource: InferenceSetResourceSpec | None = None
    inference: InferenceSpec


class MaintenanceWindow(KaitoModel):
    schedule: str
    duration: str | None = hub_is.DEFAULT_WINDOW_DURATION


class AutoUpgradePolicy(KaitoModel):
    enabled: bool | None = False
    strategy: Literal["InPlace", "Surge"] | None = hub_is.DEFAULT_UPGRADE_STRATEGY
    maintenance_window: MaintenanceWindow | None = Field(default=None, alias="maintenanceWindow")


class InferenceSetSpec(KaitoModel):
    template: InferenceSetTemplate
    # No lower bound here: admission says "must not be negative" itself; the CRD has minimum 0.
    replicas: int | None = Field(default=hub_is.DEFAULT_REPLICAS,
                                 json_schema_extra={"minimum": 0, "format": "int32"})
    node_count_limit: int | None = Field(default=None, alias="nodeCountLimit")
    label_selector: LabelSelector = Field(alias="labelSelector")
    # appsv1.StatefulSetUpdateStrategy, schemaless as in KAITO.
    update_strategy: dict[str, Any] | None = Field(
        default_factory=lambda: copy.deepcopy(hub_is.DEFAULT_UPDATE_STRATEGY), alias="updateStrategy",
        json_schema_extra={"default": hub_is.DEFAULT_UPDATE_STRATEGY})
    auto_upgrade: AutoUpgradePolicy | None = Field(default=None, alias="autoUpgrade")


class AutoUpgradeStatus(KaitoModel):
    num_drifted_workspaces: int | None = Field(default=None, alias="numDriftedWorkspaces")
    last_successful_upgrade_time: datetime | None = Field(default=None, alias="lastSuccessfulUpgradeTime")


class InferenceSetStatus(KaitoModel):
    replicas: int | None = None
    ready_replicas: int | None = Field(default=None, alias="readyReplicas")
    selector: str | None = None
    conditions: list[Condition] | None = None
    performance: Performance | None = None
    auto_upgrade: AutoUpgradeStatus | None = Field(default=None, alias="autoUpgrade")


class InferenceSet(KaitoModel):
    api_version: Literal["kaito.sh/v1beta1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["InferenceSet"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceSetSpec
    status: InferenceSetStatus | None = None


def to_hub(obj: InferenceSet) -> hub_is.InferenceSet:
    data = obj.model_dump(by_alias=True, exclude_none=True)
    for key in _WIRE_ONLY:
        data.pop(key, None)
    return hub_is.default_inferenceset(hub_is.InferenceSet.model_validate(data))


def from_hub(obj: hub_is.InferenceSet) -> InferenceSet:
    return InferenceSet.model_validate(obj.model_dump(by_alias=True, exclude_none=True))
