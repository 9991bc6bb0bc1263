"""Workspace conditions hold to metav1.Condition: the model and the generated CRD refuse what the API server would.

metav1.Condition requires type, status, lastTransitionTime, reason and message; reason is non-empty
and CamelCase-ish, message at most 32768 characters, type at most 316. A looser schema lets a status
through locally that a real API server refuses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pydantic
import pytest

from kaito.api.conditions import ConditionReason, ConditionType, set_condition
from kaito.api.crd import build_crd
from kaito.api.documents import validation_errors
from kaito.api.meta import CONDITION_REASON_PATTERN, Condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# metav1.Condition's markers, as `kubebuilder` writes them into every CRD that embeds it.
METAV1_REASON = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
METAV1_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
GOOD = {
    "type": "ResourceReady",
    "status": "True",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
    "reason": "workspaceResourceStatusSuccess",
    "message": "workspace resource is ready",
}


def _condition_schema() -> dict:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["status"]["properties"]["conditions"]["items"]


def test_crd_condition_is_metav1_condition() -> None:
    item = _condition_schema()
    props = item["properties"]
    assert sorted(item["required"]) == sorted(["type", "status", "lastTransitionTime", "reason", "message"])
    assert props["reason"] == {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": METAV1_REASON}
    assert props["message"] == {"type": "string", "maxLength": 32768}
    assert props["type"] == {"type": "string", "maxLength": 316, "pattern": METAV1_TYPE}
    assert props["status"] == {"type": "string", "enum": ["True", "False", "Unknown"]}
    assert props["observedGeneration"] == {"type": "integer", "format": "int64", "minimum": 0}
    assert props["lastTransitionTime"] == {"type": "string", "format": "date-time"}


def test_model_accepts_metav1_edges() -> None:
    for patch in (
        {},
        {"reason": "A"},
        {"reason": "a_b,c:d_"},
        {"message": ""},
        {"message": "m" * 32768},
        {"type": "example.com/Ready"},
        {"type": "T" * 316},
        {"observedGeneration": 0},
    ):
        Condition.model_validate({**GOOD, **patch})


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"reason": None}, "reason"),
        ({"message": None}, "message"),
        ({"lastTransitionTime": None}, "lastTransitionTime"),
        ({"reason": ""}, "reason"),
        ({"reason": "has space"}, "reason"),
        ({"reason": "1stReason"}, "reason"),
        ({"reason": "Ends:"}, "reason"),
        ({"reason": "R" * 1025}, "reason"),
        ({"message": "m" * 32769}, "message"),
        ({"type": "T" * 317}, "type"),
        ({"type": "bad type!"}, "type"),
        ({"status": "Maybe"}, "status"),
        ({"observedGeneration": -1}, "observedGeneration"),
    ],
)
def test_model_refuses_what_metav1_refuses(patch: dict, path: str) -> None:
    data = {k: v for k, v in {**GOOD, **patch}.items() if v is not None}
    with pytest.raises(pydantic.ValidationError) as info:
        Condition.model_validate(data)
    assert [e.path for e in validation_errors(info.value)] == [path]


def test_every_reason_and_type_the_controller_writes_fits() -> None:
    assert CONDITION_REASON_PATTERN == METAV1_REASON
    for reason in ConditionReason:
        assert re.match(METAV1_REASON, reason), reason
    for type_ in ConditionType:
        assert re.match(METAV1_TYPE, type_), type_


def test_set_condition_keeps_foreign_reasons_and_long_messages_within_metav1() -> None:
    """Reasons and messages copied from a Job or Deployment must not make the status unwritable."""
    conds = set_condition([], "JobStarted", "False", "Image Needs-Cluster", "x" * 40000, 1, T0)
    cond = conds[0]
    assert re.match(METAV1_REASON, cond.reason) and cond.reason == "ImageNeedsCluster"
    assert len(cond.message) == 32768 and cond.message.endswith("(truncated)")
    assert set_condition([], "JobStarted", "False", "", "", 1, T0)[0].reason == "Unknown"
    assert set_condition([], "JobStarted", "False", "42:", "", 1, T0)[0].reason == "Unknown"
    kept = set_condition([], "JobStarted", "False", ConditionReason.TUNING_JOB_STATUS_FAILED, "short", 1, T0)[0]
    assert (kept.reason, kept.message) == (ConditionReason.TUNING_JOB_STATUS_FAILED, "short")
