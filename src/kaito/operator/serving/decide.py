"""How many replicas: KEDA + HPA with keda-kaito-scaler's formula, as one pure function.

`decide(policy, state, observation) → (Decision, new state)`: no clock, no I/O; the autoscaler
loop (`autoscaler`) is a thin shell that scrapes, calls this and writes `spec.replicas`.

What it reproduces, step by step (reference §3.5; Kubernetes' HPA controller for 2–5):
1. **Metric values.** A gauge is averaged over the replicas that were scraped (a replica that does
   not export it counts 0; none scraped: unavailable). A histogram is its mean observation over
   `cache_window_s`: Σ Δ`_sum` / Σ Δ`_count` per replica between its oldest sample in the window
   and now (a counter that went back — a restart — adds nothing; no new observations: 0);
   unavailable until the samples span 80% of the window (keda-kaito-scaler's warm-up).
2. **The formula** (`scalingModifiers`, target 1, metricType Value):
   `(all replicas ready && every m > up) ? 2.0 : ((every m < down) ? 0.5 : 1.0)`; HPA turns the
   ratio into `ceil(ratio × current)` replicas, or `current` within its tolerance 0.1 (so 1.0
   holds). An unavailable metric holds too (KEDA reports an error, HPA keeps the count; we also
   record the hold, so a gap in the data restarts the windows — the cautious side).
3. **Stabilization.** Scale up to the *lowest* recommendation of the last `evaluation_window_s`,
   down to the *highest* of the last `scale_down_cooldown_s`: so up only when every tick of the
   evaluation window said up, down only when every tick of the cooldown said down. A fresh state
   counts as a hold at its first tick, so the first scale-up also needs a whole window.
4. **Rate.** One replica per period (HPA policy `Pods: 1`, select Max): at most one added in any
   `scale_up_cooldown_s`, one removed in any `scale_down_cooldown_s`, counted from this function's
   own changes.
5. **Bounds.** Within `[max(min, 1), max]`; a count outside them is brought in at once.
6. **Zero** (KEDA's part, HPA never goes below 1): with `min_replicas == 0`, a set idle for
   `idle_before_zero_s` (no request in flight or held, none arrived, every metric at 0) goes to
   0; at 0, demand (a request held by the gateway) wakes it to 1 — at once, no window. With
   `min_replicas > 0` a set found at 0 goes to `min`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from kaito.operator.serving.policy import MetricRule, ScalePolicy
from kaito.operator.serving.replicas import Demand

TOLERANCE = 0.1  # keda-kaito-scaler's HPA tolerance in both directions
SCALE_UP_RATIO, SCALE_DOWN_RATIO, HOLD_RATIO = 2.0, 0.5, 1.0
HISTOGRAM_COVERAGE = 0.8

Reason = Literal["hold", "stabilizing", "cooldown", "at-max", "at-min", "no-metrics", "scale-up", "scale-down",
                 "below-min", "above-max", "wake", "to-zero", "at-zero"]


@dataclass(frozen=True, kw_only=True)
class ReplicaSample:
    """One replica's scrape, summed over label sets: gauge values, and histogram (sum, count)."""

    gauges: Mapping[str, float] = field(default_factory=dict)
    histograms: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Observation:
    now: float  # seconds on the loop's clock
    spec_replicas: int
    ready_replicas: int
    samples: Mapping[str, ReplicaSample] = field(default_factory=dict)  # the replicas that answered
    demand: Demand = field(default_factory=Demand)


@dataclass(frozen=True, kw_only=True)
class ScalerState:
    recommendations: tuple[tuple[float, int], ...] = ()  # (time, replicas) the formula asked for
    scale_events: tuple[tuple[float, int], ...] = ()  # (time, change) this function made
    histograms: tuple[tuple[float, Mapping[str, Mapping[str, tuple[float, float]]]], ...] = ()
    last_active: float | None = None


@dataclass(frozen=True, kw_only=True)
class Decision:
    replicas: int
    reason: Reason
    values: Mapping[str, float | None]  # each metric's value (None: unavailable)
    ratio: float | None = None  # the formula's output, when it was evaluated

    def describe(self, current: int) -> str:
        shown = ", ".join(f"{k}={'n/a' if v is None else f'{v:g}'}" for k, v in self.values.items())
        return f"{current}→{self.replicas} ({self.reason}; {shown or 'no metrics'})"


def decide(policy: ScalePolicy, state: ScalerState, obs: Observation) -> tuple[Decision, ScalerState]:
    now, current = obs.now, obs.spec_replicas
    histograms = _keep_histograms(policy, state.histograms, obs)
    values = {rule.name: _value(rule, obs, histograms) for rule in policy.metrics}
    state = replace(state, histograms=histograms, last_active=_last_active(state, obs, values))
    lo, hi = max(policy.min_replicas, 1), policy.max_replicas

    if current == 0:  # KEDA's activation
        if obs.demand.active or policy.min_replicas > 0:
            target = min(lo, hi)
            return (Decision(replicas=target, reason="wake" if policy.min_replicas == 0 else "below-min",
                             values=values),
                    replace(state, recommendations=((now, target),), scale_events=()))
        return Decision(replicas=0, reason="at-zero", values=values), state
    if policy.scale_to_zero and not obs.demand.active and state.last_active is not None \
            and now - state.last_active >= policy.idle_before_zero_s:
        return (Decision(replicas=0, reason="to-zero", values=values),
                replace(state, recommendations=(), scale_events=()))
    if current > hi or current < lo:  # HPA's first rule, before any metric
        target = hi if current > hi else lo
        events = _prune(state.scale_events + ((now, target - current),), now, _event_horizon(policy))
        return (Decision(replicas=target, reason="above-max" if current > hi else "below-min", values=values),
                replace(state, recommendations=((now, target),), scale_events=events))

    ratio = _ratio(policy.metrics, values, all_ready=obs.ready_replicas >= current)
    raw = current if ratio is None or abs(ratio - 1.0) <= TOLERANCE else math.ceil(ratio * current)
    history = state.recommendations or ((now, current),)  # a fresh state's first tick counts as a hold
    up_since, down_since = now - policy.evaluation_window_s, now - policy.scale_down_cooldown_s
    up_rec = min([raw, *(r for t, r in history if t > up_since)])
    down_rec = max([raw, *(r for t, r in history if t > down_since)])
    stabilized = current
    if stabilized < up_rec:
        stabilized = up_rec
    if stabilized > down_rec:
        stabilized = down_rec

    desired = _rate_limited(policy, state.scale_events, now, current, stabilized, lo, hi)
    recommendations = _prune(history + ((now, raw),), now,
                             max(policy.evaluation_window_s, policy.scale_down_cooldown_s))
    events = state.scale_events
    if desired != current:
        events = events + ((now, desired - current),)
    events = _prune(events, now, _event_horizon(policy))
    if desired > current:
        reason: Reason = "scale-up"
    elif desired < current:
        reason = "scale-down"
    elif stabilized > current:
        reason = "at-max" if current >= hi else "cooldown"
    elif stabilized < current:
        reason = "at-min" if current <= lo else "cooldown"
    elif raw != current:
        reason = "stabilizing"
    elif ratio is None:
        reason = "no-metrics"
    else:
        reason = "hold"
    return (Decision(replicas=desired, reason=reason, values=values, ratio=ratio),
            replace(state, recommendations=recommendations, scale_events=events))


def _ratio(rules: tuple[MetricRule, ...], values: Mapping[str, float | None], *, all_ready: bool) -> float | None:
    if any(values[rule.name] is None for rule in rules):
        return None
    if all_ready and all(values[r.name] > r.up_threshold for r in rules):  # type: ignore[operator]
        return SCALE_UP_RATIO
    if all(values[r.name] < r.down_threshold for r in rules):  # type: ignore[operator]
        return SCALE_DOWN_RATIO
    return HOLD_RATIO


def _rate_limited(policy: ScalePolicy, events: tuple[tuple[float, int], ...], now: float, current: int,
                  stabilized: int, lo: int, hi: int) -> int:
    """HPA's behaviour rate: one Pod per period, counted from the period's starting replicas."""
    def period_start(period: float) -> int:
        added = sum(c for t, c in events if c > 0 and t > now - period)
        deleted = sum(-c for t, c in events if c < 0 and t > now - period)
        return current - added + deleted

    if stabilized > current:
        limit = max(period_start(policy.scale_up_cooldown_s) + 1, current)
        return min(stabilized, hi, limit)
    if stabilized < current:
        limit = min(period_start(policy.scale_down_cooldown_s) - 1, current)
        return max(stabilized, lo, limit)
    return current


def _value(rule: MetricRule, obs: Observation,
           history: tuple[tuple[float, Mapping[str, Mapping[str, tuple[float, float]]]], ...]) -> float | None:
    if rule.kind == "gauge":
        if not obs.samples:
            return None
        total = sum(s.gauges.get(rule.name, 0.0) for s in obs.samples.values())
        return max(0.0, total / len(obs.samples))
    window = [(t, snap) for t, snap in history if t >= obs.now - rule.cache_window_s]
    if not obs.samples or not window or obs.now - window[0][0] < HISTOGRAM_COVERAGE * rule.cache_window_s:
        return None  # no scrape now, or still warming up
    newest = window[-1][1]
    d_sum = d_count = 0.0
    for replica, metrics in newest.items():
        if rule.name not in metrics:
            continue
        base = next((snap[replica][rule.name] for _, snap in window
                     if rule.name in snap.get(replica, {})), None)
        if base is None:
            continue
        ds, dc = metrics[rule.name][0] - base[0], metrics[rule.name][1] - base[1]
        if ds >= 0 and dc >= 0:  # a counter that went back (a restart) adds nothing
            d_sum, d_count = d_sum + ds, d_count + dc
    return d_sum / d_count if d_count > 0 else 0.0


def _keep_histograms(policy: ScalePolicy, history, obs: Observation):
    rules = [r for r in policy.metrics if r.kind == "histogram"]
    if not rules:
        return ()
    if obs.samples:
        snap = {name: {r.name: s.histograms[r.name] for r in rules if r.name in s.histograms}
                for name, s in obs.samples.items()}
        history = history + ((obs.now, snap),)
    return _prune(history, obs.now, max(r.cache_window_s for r in rules), keep_at=True)


def _last_active(state: ScalerState, obs: Observation, values: Mapping[str, float | None]) -> float:
    active = obs.demand.active or any(v is not None and v > 0 for v in values.values())
    if active or state.last_active is None:
        return obs.now
    arrived = obs.demand.last_request_at
    return max(state.last_active, arrived) if arrived is not None else state.last_active


def _event_horizon(policy: ScalePolicy) -> float:
    return max(policy.scale_up_cooldown_s, policy.scale_down_cooldown_s)


def _prune(items: tuple, now: float, horizon: float, keep_at: bool = False) -> tuple:
    """Entries younger than `horizon` (those exactly `horizon` old too when `keep_at`)."""
    cutoff = now - horizon
    return tuple(item for item in items if item[0] > cutoff or (keep_at and item[0] >= cutoff))
