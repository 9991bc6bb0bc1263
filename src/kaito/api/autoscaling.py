"""The autoscaling annotations of an InferenceSet, as keda-kaito-scaler v0.6 reads them (§3.5), typed.

keda-kaito-scaler watches InferenceSets annotated `scaledobject.kaito.sh/auto-provision: "true"` and
makes a KEDA ScaledObject from the other `scaledobject.kaito.sh/…` annotations. When they are wrong
it only logs and emits an event, skipping the set, so a typo means "never scales" and nobody is
told. `parse_autoscaling` reads them into an `AutoscalingPolicy` (what
`kaito.manifests.scaledobject` renders and the local autoscaler follows) and returns every
problem as a FieldError naming the annotation and the field, which admission reports at apply time.

Where keda-kaito-scaler quietly substitutes a value (a `min-replicas` that is not a number becomes 1)
we refuse it; where it skips the set (`max-replicas` ≤ 1, below the minimum) we say why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from kaito.api.errors import FieldError

PREFIX = "scaledobject.kaito.sh/"
AUTO_PROVISION = f"{PREFIX}auto-provision"
METRICS = f"{PREFIX}metrics"
MIN_REPLICAS = f"{PREFIX}min-replicas"
MAX_REPLICAS = f"{PREFIX}max-replicas"
COMBINE_POLICY = f"{PREFIX}combinepolicy"
EVALUATION_WINDOW = f"{PREFIX}evaluationwindow"
SCALE_UP_COOLDOWN = f"{PREFIX}scaleupcooldown"
SCALE_DOWN_COOLDOWN = f"{PREFIX}scaledowncooldown"
MANAGED_BY = f"{PREFIX}managed-by"
KNOWN = frozenset({AUTO_PROVISION, METRICS, MIN_REPLICAS, MAX_REPLICAS, COMBINE_POLICY, EVALUATION_WINDOW,
                   SCALE_UP_COOLDOWN, SCALE_DOWN_COOLDOWN, MANAGED_BY})
# The single-metric form KAITO's website still shows; keda-kaito-scaler v0.6 no longer reads it.
OLD_FORM = frozenset({f"{PREFIX}metricName", f"{PREFIX}threshold"})

METRIC_TYPES = {"gauge": "service-avg", "histogram": "windowed-avg"}  # type -> the scaler's aggregation
METRIC_SOURCES = ("modelpod",)
COMBINE_POLICIES = ("AND",)
DEFAULT_METRIC_CACHE_WINDOW_S = 300
DEFAULT_EVALUATION_WINDOW_S = 60
DEFAULT_SCALE_UP_COOLDOWN_S = 300
DEFAULT_SCALE_DOWN_COOLDOWN_S = 300
INT32_MAX = 2**31 - 1
_METRIC_KEYS = ("name", "type", "source", "upthreshold", "downthreshold", "metriccachewindow")


@dataclass(frozen=True, kw_only=True)
class ScalingMetric:
    """One entry of `scaledobject.kaito.sh/metrics`: scale up above `up`, down below `down`."""

    name: str
    type: str  # gauge | histogram
    source: str = "modelpod"
    up_threshold: float
    down_threshold: float
    cache_window_s: int | None = None  # histograms only

    @property
    def aggregation(self) -> str:
        return METRIC_TYPES[self.type]

    @property
    def variable(self) -> str:
        return formula_variable(self.name)


@dataclass(frozen=True, kw_only=True)
class AutoscalingPolicy:
    metrics: tuple[ScalingMetric, ...]
    min_replicas: int = 1
    max_replicas: int | None = None  # None: spec.nodeCountLimit ÷ a child's targetNodeCount decides
    combine_policy: str = "AND"
    evaluation_window_s: int = DEFAULT_EVALUATION_WINDOW_S
    scale_up_cooldown_s: int = DEFAULT_SCALE_UP_COOLDOWN_S
    scale_down_cooldown_s: int = DEFAULT_SCALE_DOWN_COOLDOWN_S


def path(annotation: str, field: str = "") -> str:
    return f"metadata.annotations[{annotation}]{field}"


def formula_variable(name: str) -> str:
    """The metric's variable in the scaling formula (and its trigger name): as keda-kaito-scaler
    spells it, letters, digits and `_`, never starting with a digit."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return f"_{out}" if out[:1].isdigit() else out


def format_number(value: float) -> str:
    """A threshold as the scaler writes it into the formula (Go's shortest plain form: `5`, `0.5`)."""
    text = format(Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _int(annotations: Mapping[str, str], key: str, errs: list[FieldError]) -> int | None:
    raw = annotations.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw.strip())
    except ValueError:
        errs.append(FieldError(path(key), f"{raw!r} is not a whole number"))
        return None


def _seconds(annotations: Mapping[str, str], key: str, default: int, errs: list[FieldError]) -> int:
    value = _int(annotations, key, errs)
    if value is None:
        return default
    if not 0 <= value <= INT32_MAX:
        errs.append(FieldError(path(key), f"must be a number of seconds from 0 to {INT32_MAX}, got {value}"))
        return default
    return value


def _threshold(entry: Mapping[str, Any], key: str, where: str, errs: list[FieldError]) -> float | None:
    value = entry.get(key)
    if value is None:
        errs.append(FieldError(f"{where}.{key}", "required field is missing"))
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errs.append(FieldError(f"{where}.{key}", f"must be a finite number, got {value!r}"))
        return None
    return float(value)


def _metric(entry: Any, index: int, errs: list[FieldError]) -> ScalingMetric | None:
    where = path(METRICS, f"[{index}]")
    if not isinstance(entry, Mapping):
        errs.append(FieldError(where, f"each metric must be a mapping with name, type, upthreshold and "
                                      f"downthreshold, got {type(entry).__name__}"))
        return None
    entry = {str(k).lower(): v for k, v in entry.items()}  # the scaler's JSON decoding ignores case
    for key in sorted(set(entry) - set(_METRIC_KEYS)):
        errs.append(FieldError(f"{where}.{key}", f"unknown field, ignored (known: {', '.join(_METRIC_KEYS)})",
                               "warning"))
    found = len(errs)
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        errs.append(FieldError(f"{where}.name", "the metric's name is required (e.g. vllm:num_requests_waiting)"))
    kind = entry.get("type")
    if kind not in METRIC_TYPES:
        errs.append(FieldError(f"{where}.type", f"type must be gauge or histogram, got {kind!r}"))
    source = entry.get("source") or "modelpod"
    if source not in METRIC_SOURCES:
        errs.append(FieldError(f"{where}.source", f"source must be modelpod, got {source!r}"))
    up = _threshold(entry, "upthreshold", where, errs)
    down = _threshold(entry, "downthreshold", where, errs)
    if up is not None and down is not None and down > up:
        errs.append(FieldError(f"{where}.downthreshold",
                               f"downthreshold ({format_number(down)}) is above upthreshold ({format_number(up)}): "
                               "the set would scale down and up at once; make downthreshold ≤ upthreshold"))
    window = entry.get("metriccachewindow")
    if window is not None and kind != "histogram":
        errs.append(FieldError(f"{where}.metriccachewindow", "only histogram metrics take a metriccachewindow"))
    elif window is not None and (isinstance(window, bool) or not isinstance(window, int) or window <= 0):
        errs.append(FieldError(f"{where}.metriccachewindow", f"must be a positive number of seconds, got {window!r}"))
    if len(errs) > found and any(e.severity == "error" for e in errs[found:]):
        return None
    cache = (window or DEFAULT_METRIC_CACHE_WINDOW_S) if kind == "histogram" else None
    return ScalingMetric(name=name, type=kind, source=source, up_threshold=up, down_threshold=down,
                         cache_window_s=cache)


def _metrics(raw: str | None, errs: list[FieldError]) -> tuple[ScalingMetric, ...]:
    if raw is None or not raw.strip():
        errs.append(FieldError(path(METRICS), "auto-provision needs this annotation: a YAML list of metrics, e.g. "
                                              "[{name: vllm:num_requests_waiting, type: gauge, upthreshold: 10, "
                                              "downthreshold: 2}]"))
        return ()
    try:
        entries = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        reason = getattr(exc, "problem", None) or str(exc)
        errs.append(FieldError(path(METRICS), f"not valid YAML or JSON: {reason}"))
        return ()
    if not isinstance(entries, list) or not entries:
        errs.append(FieldError(path(METRICS), f"must be a non-empty list of metrics, got {type(entries).__name__}"))
        return ()
    metrics = [m for i, entry in enumerate(entries) if (m := _metric(entry, i, errs)) is not None]
    seen: dict[str, str] = {}
    for i, metric in enumerate(metrics):
        if metric.variable in seen:
            errs.append(FieldError(path(METRICS, f"[{i}].name"),
                                   f"{metric.name!r} and {seen[metric.variable]!r} are both written "
                                   f"{metric.variable!r} in the scaling formula: rename one"))
        seen.setdefault(metric.variable, metric.name)
    return tuple(metrics)


def parse_autoscaling(annotations: Mapping[str, str], *,
                      node_count_limit: int | None = None) -> tuple[AutoscalingPolicy | None, list[FieldError]]:
    """The policy the annotations ask for (None when auto-provisioning is off or they are wrong),
    and every problem found, each naming the annotation and the field."""
    errs: list[FieldError] = []
    ours = {k: v for k, v in annotations.items() if k.startswith(PREFIX)}
    for key in sorted(set(ours) & OLD_FORM):
        errs.append(FieldError(path(key), "the single-metric form is not read by keda-kaito-scaler v0.6: "
                                          f"list the metric in {METRICS} instead", "warning"))
    for key in sorted(set(ours) - KNOWN - OLD_FORM):
        errs.append(FieldError(path(key), f"unknown autoscaling annotation, ignored (known: "
                                          f"{', '.join(sorted(k.removeprefix(PREFIX) for k in KNOWN))})", "warning"))
    switch = annotations.get(AUTO_PROVISION)
    if switch != "true":
        if switch is not None and switch != "false":
            errs.append(FieldError(path(AUTO_PROVISION), f"{switch!r} turns autoscaling off: only \"true\" "
                                                         "turns it on", "warning"))
        return None, errs
    before = len(errs)
    metrics = _metrics(annotations.get(METRICS), errs)
    policy = (annotations.get(COMBINE_POLICY) or "AND").upper()
    if policy not in COMBINE_POLICIES:
        errs.append(FieldError(path(COMBINE_POLICY), f"unsupported combine policy {annotations[COMBINE_POLICY]!r}: "
                                                     "only AND"))
    low = _int(annotations, MIN_REPLICAS, errs)
    if low is not None and low < 1:
        errs.append(FieldError(path(MIN_REPLICAS), f"{low} is raised to 1: keda-kaito-scaler never scales an "
                                                   "InferenceSet to zero", "warning"))
    low = max(1, low or 1)
    high = _int(annotations, MAX_REPLICAS, errs)
    limit = node_count_limit or 0
    if high is not None:
        if high <= 1:
            errs.append(FieldError(path(MAX_REPLICAS), f"must be at least 2 to scale at all, got {high}"))
        elif limit > 0:
            errs.append(FieldError(path(MAX_REPLICAS), "ignored while spec.nodeCountLimit is set: the maximum is "
                                                       "nodeCountLimit ÷ the nodes one replica needs", "warning"))
        elif high < low:
            errs.append(FieldError(path(MAX_REPLICAS), f"max-replicas ({high}) is below min-replicas ({low})"))
        if limit > 0:
            high = None
    elif limit <= 0 and MAX_REPLICAS not in annotations:
        errs.append(FieldError(path(MAX_REPLICAS), "set max-replicas, or spec.nodeCountLimit to derive it from"))
    if limit > 0 and limit < low:
        errs.append(FieldError("spec.nodeCountLimit", f"nodeCountLimit ({limit}) allows fewer replicas than "
                                                      f"min-replicas ({low})"))
    windows = {key: _seconds(annotations, key, default, errs) for key, default in (
        (EVALUATION_WINDOW, DEFAULT_EVALUATION_WINDOW_S), (SCALE_UP_COOLDOWN, DEFAULT_SCALE_UP_COOLDOWN_S),
        (SCALE_DOWN_COOLDOWN, DEFAULT_SCALE_DOWN_COOLDOWN_S))}
    if any(e.severity == "error" for e in errs[before:]):
        return None, errs
    return AutoscalingPolicy(metrics=metrics, min_replicas=low, max_replicas=high, combine_policy=policy,
                             evaluation_window_s=windows[EVALUATION_WINDOW],
                             scale_up_cooldown_s=windows[SCALE_UP_COOLDOWN],
                             scale_down_cooldown_s=windows[SCALE_DOWN_COOLDOWN]), errs
