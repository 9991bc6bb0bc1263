"""Kubernetes types every Workspace version shares: object metadata, label selectors, conditions.

They live outside `v1alpha1` so that `v1beta1` (a later issue) reuses them unchanged. JSON names are
exactly Kubernetes' (metav1); Python attributes are snake_case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class KaitoModel(BaseModel):
    """Base of every API model: camelCase aliases, snake_case attributes, unknown fields rejected."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", validate_assignment=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-shaped dict with KAITO's names and no None values (what `kubectl get -o yaml` shows)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OwnerReference(KaitoModel):
    api_version: str = Field(alias="apiVersion")
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = Field(default=None, alias="blockOwnerDeletion")


class ObjectMeta(KaitoModel):
    """metav1.ObjectMeta: the usual fields are accepted, anything else is an error with its path."""

    name: str | None = None
    generate_name: str | None = Field(default=None, alias="generateName")
    namespace: str | None = None
    self_link: str | None = Field(default=None, alias="selfLink")
    uid: str | None = None
    resource_version: str | None = Field(default=None, alias="resourceVersion")
    generation: int | None = None
    creation_timestamp: datetime | None = Field(default=None, alias="creationTimestamp")
    deletion_timestamp: datetime | None = Field(default=None, alias="deletionTimestamp")
    deletion_grace_period_seconds: int | None = Field(default=None, alias="deletionGracePeriodSeconds")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = Field(default=None, alias="ownerReferences")
    finalizers: list[str] | None = None
    # Written by the API server; kept opaque so a `kubectl get -o yaml` dump parses and round-trips.
    managed_fields: list[dict[str, Any]] | None = Field(default=None, alias="managedFields")


class LabelSelectorRequirement(KaitoModel):
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist: checked by validation to give a clear message
    values: list[str] | None = None


class LabelSelector(KaitoModel):
    match_labels: dict[str, str] | None = Field(default=None, alias="matchLabels")
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, alias="matchExpressions")


ConditionStatus = Literal["True", "False", "Unknown"]

# metav1.Condition's validation markers, verbatim: the API server refuses a status that breaks them,
# so the model (and the CRD generated from it) refuses it first.
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_TYPE_MAX = 316
CONDITION_REASON_PATTERN = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
CONDITION_REASON_MAX = 1024
CONDITION_MESSAGE_MAX = 32768


class Condition(KaitoModel):
    """metav1.Condition: all five of type, status, lastTransitionTime, reason, message required."""

    type: str = Field(max_length=CONDITION_TYPE_MAX, pattern=CONDITION_TYPE_PATTERN)
    status: ConditionStatus
    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", ge=0, json_schema_extra={"format": "int64"}
    )
    last_transition_time: datetime = Field(alias="lastTransitionTime")
    reason: str = Field(min_length=1, max_length=CONDITION_REASON_MAX, pattern=CONDITION_REASON_PATTERN)
    message: str = Field(max_length=CONDITION_MESSAGE_MAX)
