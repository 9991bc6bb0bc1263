"""An InferenceSet's autoscaling policy, as keda-kaito-scaler reads it from the set's annotations.

The annotations (`scaledobject.kaito.sh/metrics`, `min-replicas`, `max-replicas`,
`evaluationwindow`, `scaleupcooldown`, `scaledowncooldown`; ARCHITECTURE's reference §3.5) are
parsed by `kaito.api`; the InferenceSet controller maps that model onto this type. Defaults are
keda-kaito-scaler's: `vllm:num_requests_waiting` as a gauge, windows 60 / 300 / 300 s, a histogram's
cache window 300 s. One difference: `min_replicas` may be 0 here (the local cluster scales to zero,
as KEDA does with `minReplicaCount: 0`); keda-kaito-scaler lifts values below 1 to 1, so the mapping
decides whether a set asked for zero. `check` returns field errors, never raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from kaito.api.errors import FieldError

DEFAULT_METRIC = "vllm:num_requests_waiting"
MetricKind = Literal["gauge", "histogram"]


@dataclass(frozen=True, kw_only=True)
class MetricRule:
    """One metric of the AND: scale up while it is above `up_threshold` (all of them are), down while
    it is below `down_threshold` (all of them are)."""

    name: str = DEFAULT_METRIC
    kind: MetricKind = "gauge"  # gauge: averaged over replicas; histogram: windowed mean observation
    up_threshold: float
    down_threshold: float
    cache_window_s: float = 300.0  # histogram only: the window of its mean (metriccachewindow)


@dataclass(frozen=True, kw_only=True)
class ScalePolicy:
    metrics: tuple[MetricRule, ...]
    min_replicas: int = 1  # 0: scale to zero when idle; the first request wakes one
    max_replicas: int
    evaluation_window_s: float = 60.0  # scale up only after the whole window said so (HPA scale-up window)
    scale_up_cooldown_s: float = 300.0  # at most one replica added per this period
    scale_down_cooldown_s: float = 300.0  # scale down only after this window said so; one replica per period
    idle_to_zero_s: float | None = None  # with min 0: idle this long → 0 (default: the scale-down cooldown)

    @property
    def scale_to_zero(self) -> bool:
        return self.min_replicas == 0

    @property
    def idle_before_zero_s(self) -> float:
        return self.scale_down_cooldown_s if self.idle_to_zero_s is None else self.idle_to_zero_s

    def check(self) -> list[FieldError]:
        problems: list[FieldError] = []
        if not self.metrics:
            problems.append(FieldError("metrics", "at least one metric is required"))
        seen: set[str] = set()
        for i, rule in enumerate(self.metrics):
            at = f"metrics[{i}]"
            if not rule.name:
                problems.append(FieldError(f"{at}.name", "must not be empty"))
            elif rule.name in seen:
                problems.append(FieldError(f"{at}.name", f"{rule.name!r} is listed twice"))
            seen.add(rule.name)
            if rule.kind not in ("gauge", "histogram"):
                problems.append(FieldError(f"{at}.type", f"must be gauge or histogram, not {rule.kind!r}"))
            for attr in ("up_threshold", "down_threshold"):
                if not math.isfinite(getattr(rule, attr)):
                    problems.append(FieldError(f"{at}.{attr}", "must be a finite number"))
            if rule.down_threshold > rule.up_threshold:
                problems.append(FieldError(f"{at}.down_threshold", f"{rule.down_threshold:g} is above the up "
                                           f"threshold {rule.up_threshold:g}: they contradict each other"))
            if rule.kind == "histogram" and not rule.cache_window_s > 0:
                problems.append(FieldError(f"{at}.cache_window_s", "must be above 0 for a histogram"))
        if self.min_replicas < 0:
            problems.append(FieldError("min_replicas", "must be 0 or more"))
        if self.max_replicas < 1:
            problems.append(FieldError("max_replicas", "must be 1 or more"))
        elif self.max_replicas < self.min_replicas:
            problems.append(FieldError("max_replicas", f"{self.max_replicas} is below min_replicas "
                                       f"{self.min_replicas}"))
        for attr in ("evaluation_window_s", "scale_up_cooldown_s", "scale_down_cooldown_s", "idle_to_zero_s"):
            value = getattr(self, attr)
            if value is not None and not (math.isfinite(value) and value >= 0):
                problems.append(FieldError(attr, "must be 0 or more seconds"))
        return problems

