"""`kaito.sh/v1alpha1` InferenceSet as KAITO v0.12 serves it, and its lossless conversion to the hub.

KAITO's v1alpha1 InferenceSet already embeds the v1beta1 `inference` section; it lacks
`spec.template.resource.partition` and the benchmark `config` of each `status.performance` metric.
Going to v1alpha1 those ride in the `conversion.kaito.sh/hub-fields` annotation
(`kaito.api.lossless`), so a v1alpha1 client's read-modify-write keeps them.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Literal

from pydantic import Field

from kaito.api import inferenceset as hub_is
from kaito.api import lossless
from kaito.api.meta import Condition, KaitoModel, LabelSelector, ObjectMeta
from kaito.api.v1alpha1.types import API_VERSION
from kaito.api.v1beta1.inferenceset import AutoUpgradePolicy, AutoUpgradeStatus
from kaito.api.v1beta1.types import InferenceSpec

KIND = hub_is.KIND
_WIRE_ONLY = ("apiVersion", "kind")
_METRICS = "status.performance.metrics"
_PLAIN_KEY = re.compile(r"[^.\[\]]+")
STASHED = (lossless.Stashed("spec.template.resource.partition", anchor=3),)


class InferenceSetResourceSpec(KaitoModel):
    instance_type: str | None = Field(default=None, alias="instanceType")


class InferenceSetTemplate(KaitoModel):
    metadata: dict[str, Any] | None = None
    resource: InferenceSetResourceSpec | None = None
    inference: InferenceSpec


class InferenceSetSpec(KaitoModel):
    template: InferenceSetTemplate
    replicas: int | None = Field(default=hub_is.DEFAULT_REPLICAS,
                                 json_schema_extra={"minimum": 0, "format": "int32"})
    node_count_limit: int | None = Field(default=None, alias="nodeCountLimit")
    label_selector: LabelSelector = Field(alias="labelSelector")
    update_strategy: dict[str, Any] | None = Field(
        default_factory=lambda: copy.deepcopy(hub_is.DEFAULT_UPDATE_STRATEGY), alias="updateStrategy",
        json_schema_extra={"default": hub_is.DEFAULT_UPDATE_STRATEGY})
    auto_upgrade: AutoUpgradePolicy | None = Field(default=None, alias="autoUpgrade")


class Metric(KaitoModel):
    """v1alpha1's aggregated metric: no `config`."""

    description: str
    value: str
    unit: str | None = None


class Performance(KaitoModel):
    metrics: dict[str, Metric] | None = None


class InferenceSetStatus(KaitoModel):
    replicas: int | None = None
    ready_replicas: int | None = Field(default=None, alias="readyReplicas")
    selector: str | None = None
    conditions: list[Condition] | None = None
    performance: Performance | None = None
    auto_upgrade: AutoUpgradeStatus | None = Field(default=None, alias="autoUpgrade")


class InferenceSet(KaitoModel):
    api_version: Literal["kaito.sh/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["InferenceSet"] = KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceSetSpec
    status: InferenceSetStatus | None = None


def _metric_configs(data: dict[str, Any]) -> tuple[lossless.Stashed, ...]:
    """One stashed path per metric that has a `config`; `status.performance` whole when a metric
    name cannot be written as a path (it holds a dot or a bracket)."""
    metrics = lossless.get_path(data, lossless.parse_path(_METRICS))
    if not isinstance(metrics, dict):
        return ()
    with_config = [key for key, metric in metrics.items() if isinstance(metric, dict) and "config" in metric]
    if any(not _PLAIN_KEY.fullmatch(key) for key in with_config):
        return (lossless.Stashed("status.performance", anchor=0),)
    return tuple(lossless.Stashed(f"{_METRICS}.{key}.config", anchor=4) for key in with_config)


def _carried(data: dict[str, Any]) -> tuple[lossless.Stashed, ...]:
    """The metric paths the annotation carries (their names are only known from it)."""
    raw = ((data.get("metadata") or {}).get("annotations") or {}).get(lossless.ANNOTATION)
    try:
        carried = json.loads(raw).get("set") if raw else None
    except (TypeError, ValueError, AttributeError):
        return ()
    if not isinstance(carried, dict):
        return ()
    out = [lossless.Stashed(path, anchor=4) for path in carried
           if path.startswith(f"{_METRICS}.") and path.endswith(".config")]
    if "status.performance" in carried:
        out.append(lossless.Stashed("status.performance", anchor=0))
    return tuple(out)


def to_hub(obj: InferenceSet) -> hub_is.InferenceSet:
    data = obj.model_dump(by_alias=True, exclude_none=True)
    for key in _WIRE_ONLY:
        data.pop(key, None)
    lossless.restore(data, STASHED + _carried(data), ())
    return hub_is.default_inferenceset(hub_is.InferenceSet.model_validate(data))


def from_hub(obj: hub_is.InferenceSet) -> InferenceSet:
    data = obj.model_dump(by_alias=True, exclude_none=True)
    lossless.stash(data, STASHED + _metric_configs(data), ())
    return InferenceSet.model_validate(data)
