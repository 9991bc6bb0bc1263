"""The autoscaler loop over HTTP and the gateway's scale-from-zero, with fake replicas.

`FakeScaleTarget` plays the InferenceSet's scale subresource: writing replicas starts or stops fake
model servers and updates the pool. The autoscaler's clock is a plain number the test moves, so
its windows and cooldowns are crossed without waiting; waits for the background loop are on
conditions, bounded by a guard (never a timed assertion).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from kaito.operator.serving.autoscaler import Autoscaler
from kaito.operator.serving.endpoint import InferenceSetEndpoint
from kaito.operator.serving.gateway import GatewaySettings
from kaito.operator.serving.policy import MetricRule, ScalePolicy
from kaito.operator.serving.replicas import ReplicaPool
from tests.support.fake_replicas import FakeScaleTarget

GUARD_S = 20


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def policy(**overrides) -> ScalePolicy:
    base = dict(metrics=(MetricRule(up_threshold=10, down_threshold=1),), min_replicas=1, max_replicas=3,
                evaluation_window_s=60, scale_up_cooldown_s=300, scale_down_cooldown_s=300)
    return ScalePolicy(**{**base, **overrides})


async def until(condition) -> None:
    async with asyncio.timeout(GUARD_S):
        while not condition():
            await asyncio.sleep(0.01)


async def test_sustained_queue_adds_a_replica_and_a_quiet_one_removes_it_after_the_cooldown():
    pool, clock = ReplicaPool(), Clock()
    target = FakeScaleTarget(pool)
    await target.set_replicas(1)
    target.set_waiting(20)
    scaler = Autoscaler(policy(), target, pool, clock=clock)
    try:
        decisions = []
        for t in (0, 30, 60):
            clock.now = t
            decisions.append((await scaler.tick()).reason)
        assert decisions == ["stabilizing", "stabilizing", "scale-up"]
        assert target.writes == [1, 2] and [r.name for r in pool.ready()] == ["w0", "w1"]
        assert scaler.last_decision.values == {"vllm:num_requests_waiting": 20.0}

        target.set_waiting(0)
        for t in range(90, 360, 30):
            clock.now = t
            assert (await scaler.tick()).replicas == 2
        clock.now = 360  # the scale-down cooldown (300 s) since the last tick that was not below 1
        decision = await scaler.tick()
        assert (decision.reason, target.writes, len(pool.ready())) == ("scale-down", [1, 2, 1], 1)
    finally:
        await scaler.aclose()
        await target.stop()


async def test_a_replica_that_cannot_be_scraped_is_left_out_and_none_scraped_holds():
    pool, clock = ReplicaPool(), Clock()
    target = FakeScaleTarget(pool)
    await target.set_replicas(2)
    target.fakes[0].waiting = 30
    await target.fakes[1].stop()  # listed, but refuses: not averaged in as 0
    scaler = Autoscaler(policy(evaluation_window_s=0), target, pool, clock=clock)
    try:
        decision = await scaler.tick()
        assert decision.values == {"vllm:num_requests_waiting": 30.0}
        assert decision.reason == "scale-up" and target.writes[-1] == 3
        for fake in target.fakes:
            await fake.stop()
        clock.now = 400
        decision = await scaler.tick()
        assert (decision.reason, decision.values) == ("no-metrics", {"vllm:num_requests_waiting": None})
    finally:
        await scaler.aclose()
        await target.stop()


async def test_a_policy_that_contradicts_itself_is_refused_by_name():
    with pytest.raises(ValueError, match=r"metrics\[0\].down_threshold: 5 is above the up threshold 1"):
        Autoscaler(policy(metrics=(MetricRule(up_threshold=1, down_threshold=5),)), FakeScaleTarget(ReplicaPool()),
                   ReplicaPool())


async def endpoint_at_zero(clock: Clock, **overrides) -> tuple[InferenceSetEndpoint, FakeScaleTarget]:
    target = FakeScaleTarget(ReplicaPool())
    endpoint = InferenceSetEndpoint(GatewaySettings(model_name="myset", wake_timeout_s=GUARD_S), target=target,
                                    policy=policy(min_replicas=0, **overrides), interval_s=3600, clock=clock)
    target.pool = endpoint.pool
    await endpoint.start()
    return endpoint, target


async def test_scale_from_zero_holds_the_first_request_and_forwards_it_once_a_replica_is_ready():
    clock = Clock()
    endpoint, target = await endpoint_at_zero(clock)
    try:
        async with httpx.AsyncClient(base_url=endpoint.url, timeout=GUARD_S) as client:
            reply = await client.post("/v1/chat/completions",
                                      json={"model": "myset", "messages": [{"role": "user", "content": "wake up"}]})
            text = (await client.get("/metrics")).text
        assert reply.status_code == 200 and reply.headers["x-kaito-replica"] == "w0"
        assert target.writes == [1] and target.fakes[0].served == 1
        assert endpoint.autoscaler.last_decision.reason in ("wake", "hold")
        assert "kaito_gateway_wakeups_total 1.0" in text and "kaito_autoscaler_desired_replicas 1.0" in text
    finally:
        await endpoint.stop()
        await target.stop()


async def test_an_idle_set_goes_to_zero_and_the_next_request_brings_it_back():
    clock = Clock()
    endpoint, target = await endpoint_at_zero(clock, idle_to_zero_s=100)
    try:
        await until(lambda: endpoint.autoscaler.last_decision is not None)  # the loop's first tick: at zero
        await target.set_replicas(1)
        target.writes.clear()
        async with httpx.AsyncClient(base_url=endpoint.url, timeout=GUARD_S) as client:
            assert (await client.post("/v1/completions", json={"prompt": "hi"})).status_code == 200  # at 0 s
            clock.now = 99
            assert (await endpoint.autoscaler.tick()).reason == "hold"
            clock.now = 100
            assert (await endpoint.autoscaler.tick()).reason == "to-zero"
            assert target.spec == 0 and not endpoint.pool.all()
            reply = await client.post("/v1/completions", json={"prompt": "again"})
        assert reply.status_code == 200 and reply.headers["x-kaito-replica"] == "w1"
        assert target.writes == [0, 1]
    finally:
        await endpoint.stop()
        await target.stop()


async def test_autoscaling_starts_changes_and_stops_with_the_policy():
    target = FakeScaleTarget(ReplicaPool())
    endpoint = InferenceSetEndpoint(GatewaySettings(model_name="myset"), target=target, interval_s=3600)
    target.pool = endpoint.pool
    await endpoint.start()
    try:
        assert endpoint.autoscaler is None and endpoint.gateway.waker is None
        await endpoint.set_policy(policy(min_replicas=2))
        await until(lambda: target.writes == [2])  # the loop's first tick brings the set to its min
        assert endpoint.gateway.waker is endpoint.autoscaler
        await endpoint.set_policy(policy(min_replicas=1, max_replicas=1, evaluation_window_s=0))
        assert endpoint.autoscaler.policy.max_replicas == 1
        endpoint.autoscaler.wake()
        await until(lambda: target.writes == [2, 1])  # above the new max: down at once
        await endpoint.set_policy(None)
        assert endpoint.autoscaler is None and endpoint.gateway.waker is None
    finally:
        await endpoint.stop()
        await target.stop()
