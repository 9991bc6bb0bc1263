"""`decide`: KEDA + HPA with keda-kaito-scaler's formula, as tables over an injected clock.

Each scenario is a run of ticks: at each, the observed `spec.replicas` is what the previous
decision asked for (unless the step overrides it), and the decision's replica count and reason are
checked. Times are plain numbers (seconds): nothing sleeps, nothing is timed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kaito.operator.serving.decide import Decision, Observation, ReplicaSample, ScalerState, decide
from kaito.operator.serving.policy import MetricRule, ScalePolicy
from kaito.operator.serving.replicas import Demand

WAITING = "vllm:num_requests_waiting"
LATENCY = "vllm:e2e_request_latency_seconds"


def policy(**overrides) -> ScalePolicy:
    base = dict(metrics=(MetricRule(up_threshold=10, down_threshold=1),), min_replicas=1, max_replicas=4,
                evaluation_window_s=60, scale_up_cooldown_s=300, scale_down_cooldown_s=300)
    return ScalePolicy(**{**base, **overrides})


@dataclass(frozen=True)
class Step:
    t: float
    waiting: tuple[float | None, ...] | None = None  # per replica (None: the replica lacks the metric);
    #                                                  None: no replica could be scraped
    expect: tuple[int, str] = (0, "")
    ready: int | None = None  # default: every replica ready
    spec: int | None = None  # default: what the last decision asked for
    demand: Demand = field(default_factory=Demand)
    histogram: tuple[tuple[float, float], ...] | None = None  # per replica (sum, count) of LATENCY


def run(pol: ScalePolicy, start: int, steps: list[Step]) -> list[tuple[int, str]]:
    state, spec, got = ScalerState(), start, []
    for step in steps:
        spec = step.spec if step.spec is not None else spec
        samples: dict[str, ReplicaSample] = {}
        if step.waiting is not None:
            for i, value in enumerate(step.waiting):
                gauges = {} if value is None else {WAITING: value}
                hist = {LATENCY: step.histogram[i]} if step.histogram else {}
                samples[f"r{i}"] = ReplicaSample(gauges=gauges, histograms=hist)
        obs = Observation(now=step.t, spec_replicas=spec, ready_replicas=spec if step.ready is None else step.ready,
                          samples=samples, demand=step.demand)
        decision, state = decide(pol, state, obs)
        got.append((decision.replicas, decision.reason))
        spec = decision.replicas
    return got


def steps_and_expected(steps: list[Step]) -> list[tuple[int, str]]:
    return [s.expect for s in steps]


SCENARIOS = {
    "within the thresholds: hold": (policy(), 1, [
        Step(0, (5,), (1, "hold")), Step(15, (5,), (1, "hold")), Step(600, (5,), (1, "hold"))]),
    "up only once the whole evaluation window said up": (policy(), 1, [
        Step(0, (20,), (1, "stabilizing")), Step(30, (20,), (1, "stabilizing")), Step(60, (20,), (2, "scale-up"))]),
    "a tick inside the thresholds restarts the evaluation window": (policy(), 1, [
        Step(0, (20,), (1, "stabilizing")), Step(30, (5,), (1, "hold")), Step(60, (20,), (1, "stabilizing")),
        Step(90, (20,), (2, "scale-up"))]),
    "window 0: up at the first tick above": (policy(evaluation_window_s=0), 1, [
        Step(0, (20,), (2, "scale-up"))]),
    "readiness gate: no up while a replica is not ready, and the window starts again after": (policy(), 2, [
        Step(0, (20, 20), (2, "hold"), ready=1), Step(60, (20, 20), (2, "hold"), ready=1),
        Step(90, (20, 20), (2, "stabilizing")), Step(120, (20, 20), (3, "scale-up")),
        Step(150, (20, 20, 20), (3, "cooldown"))]),
    "one replica per scale-up cooldown": (policy(), 1, [
        Step(0, (20,), (1, "stabilizing")), Step(60, (20,), (2, "scale-up")), Step(120, (20, 20), (2, "cooldown")),
        Step(180, (20, 20), (2, "cooldown")), Step(359, (20, 20), (2, "cooldown")), Step(360, (20, 20), (3, "scale-up"))]),
    "never above max": (policy(max_replicas=2), 2, [
        Step(0, (20, 20), (2, "stabilizing")), Step(60, (20, 20), (2, "at-max")), Step(900, (20, 20), (2, "at-max"))]),
    "down only after the whole scale-down cooldown said down": (policy(), 3, [
        Step(0, (0, 0, 0), (3, "stabilizing")), Step(150, (0, 0, 0), (3, "stabilizing")),
        Step(300, (0, 0, 0), (2, "scale-down"))]),
    "a busy tick restarts the scale-down window": (policy(), 3, [
        Step(0, (0, 0, 0), (3, "stabilizing")), Step(150, (5, 5, 5), (3, "hold")), Step(300, (0, 0, 0), (3, "stabilizing")),
        Step(450, (0, 0, 0), (2, "scale-down"))]),
    "one replica per scale-down cooldown, never below min": (policy(min_replicas=2), 4, [
        Step(0, (0,) * 4, (4, "stabilizing")), Step(300, (0,) * 4, (3, "scale-down")),
        Step(450, (0,) * 3, (3, "cooldown")), Step(600, (0,) * 3, (2, "scale-down")), Step(1200, (0,) * 2, (2, "at-min"))]),
    "one replica never goes below one by the formula": (policy(), 1, [
        Step(0, (0,), (1, "hold")), Step(900, (0,), (1, "hold"))]),
    "down is not gated by readiness": (policy(scale_down_cooldown_s=0), 2, [
        Step(0, (0, 0), (1, "scale-down"), ready=1)]),
    "bounds: above max and below min are corrected at once": (policy(min_replicas=2, max_replicas=3), 5, [
        Step(0, (5,) * 5, (3, "above-max")), Step(10, (5,), (2, "below-min"), spec=1)]),
    "no replica scraped: hold, and the windows start again": (policy(), 1, [
        Step(0, (20,), (1, "stabilizing")), Step(30, None, (1, "no-metrics")), Step(60, (20,), (1, "stabilizing")),
        Step(90, (20,), (2, "scale-up"))]),
    "a replica without the metric counts 0 in the average": (policy(evaluation_window_s=0), 2, [
        Step(0, (21, None), (3, "scale-up")), Step(1, (15, None), (2, "hold"), spec=2)]),
    "scale to zero after the idle period": (policy(min_replicas=0, scale_down_cooldown_s=300), 1, [
        Step(0, (0,), (1, "hold")), Step(299, (0,), (1, "hold")), Step(300, (0,), (0, "to-zero")),
        Step(400, None, (0, "at-zero"))]),
    "a request in between delays zero": (policy(min_replicas=0, idle_to_zero_s=100), 1, [
        Step(0, (0,), (1, "hold")), Step(90, (0,), (1, "hold"), demand=Demand(last_request_at=50)),
        Step(149, (0,), (1, "hold")), Step(150, (0,), (0, "to-zero"))]),
    "waiting requests or in-flight ones keep the set up": (policy(min_replicas=0, idle_to_zero_s=100), 1, [
        Step(0, (0,), (1, "hold")), Step(100, (0.5,), (1, "hold")), Step(199, (0,), (1, "hold"), demand=Demand(in_flight=1)),
        Step(298, (0,), (1, "hold")), Step(299, (0,), (0, "to-zero"))]),
    "at zero, a held request wakes one replica at once": (policy(min_replicas=0), 0, [
        Step(0, None, (0, "at-zero")), Step(10, None, (1, "wake"), demand=Demand(held=1)),
        Step(20, (0,), (1, "hold"), ready=0)]),
    "at zero without a zero-allowed policy: back to min": (policy(min_replicas=2), 0, [
        Step(0, None, (2, "below-min"))]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_decide_table(name: str) -> None:
    pol, start, steps = SCENARIOS[name]
    assert run(pol, start, steps) == steps_and_expected(steps)


def test_two_metrics_combine_with_and() -> None:
    pol = policy(evaluation_window_s=0, scale_down_cooldown_s=0,
                 metrics=(MetricRule(up_threshold=10, down_threshold=1),
                          MetricRule(name="vllm:num_requests_running", up_threshold=4, down_threshold=2)))

    def one(waiting: float, running: float) -> Decision:
        sample = ReplicaSample(gauges={WAITING: waiting, "vllm:num_requests_running": running})
        return decide(pol, ScalerState(), Observation(now=0, spec_replicas=2, ready_replicas=2,
                                                      samples={"a": sample}))[0]

    assert (one(20, 8).replicas, one(20, 3).replicas, one(0, 1).replicas, one(0, 3).replicas) == (3, 2, 1, 2)
    assert one(20, 8).ratio == 2.0 and one(0, 1).ratio == 0.5 and one(0, 3).ratio == 1.0


HIST = MetricRule(name=LATENCY, kind="histogram", up_threshold=2.0, down_threshold=0.5, cache_window_s=60)


def test_histogram_is_a_windowed_mean_after_warm_up() -> None:
    pol = policy(metrics=(HIST,), evaluation_window_s=0)
    steps = [
        Step(0, (0, 0), (2, "no-metrics"), histogram=((0, 0), (0, 0))),
        Step(30, (0, 0), (2, "no-metrics"), histogram=((10, 5), (0, 0))),  # 30 s of a 60 s window: warming up
        # 60 s: (40 + 20) s over (10 + 5) requests = 4 s > 2: up
        Step(60, (0, 0), (3, "scale-up"), histogram=((40, 10), (20, 5))),
    ]
    assert run(pol, 2, steps) == steps_and_expected(steps)


def test_histogram_counter_that_went_back_adds_nothing_and_an_idle_window_is_zero() -> None:
    pol = policy(metrics=(HIST,), evaluation_window_s=0, scale_down_cooldown_s=0)
    state = ScalerState()
    samples = [(0, ((100, 10), (50, 10))), (60, ((1, 1), (50, 10))), (120, ((1, 1), (50, 10)))]
    values = []
    for t, hist in samples:
        obs = Observation(now=t, spec_replicas=2, ready_replicas=2,
                          samples={f"r{i}": ReplicaSample(histograms={LATENCY: h}) for i, h in enumerate(hist)})
        decision, state = decide(pol, state, obs)
        values.append(decision.values[LATENCY])
    # t=60: r0 restarted (its sums went back): nothing; r1 had no new requests: nothing → 0
    assert values == [None, 0.0, 0.0]


def test_policy_check_names_each_contradiction() -> None:
    bad = ScalePolicy(metrics=(MetricRule(up_threshold=1, down_threshold=5), MetricRule(up_threshold=3, down_threshold=1)),
                      min_replicas=3, max_replicas=2, evaluation_window_s=-1)
    assert [(p.path, p.message) for p in bad.check()] == [
        ("metrics[0].down_threshold", "5 is above the up threshold 1: they contradict each other"),
        ("metrics[1].name", "'vllm:num_requests_waiting' is listed twice"),
        ("max_replicas", "2 is below min_replicas 3"),
        ("evaluation_window_s", "must be 0 or more seconds"),
    ]
    assert policy().check() == []
    assert [p.path for p in ScalePolicy(metrics=(), max_replicas=0).check()] == ["metrics", "max_replicas"]
