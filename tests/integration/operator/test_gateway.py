"""The local gateway over small fake replicas on 127.0.0.1 (`tests.support.fake_replicas`).

Everything runs on the test's event loop; where a test waits for something to happen it waits on an
event, bounded by `asyncio.timeout` only as a guard against a hang (never a timed assertion).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter

import httpx
import pytest

from kaito.operator.serving.front import FrontLimits
from kaito.operator.serving.gateway import Gateway, GatewaySettings
from kaito.operator.serving.replicas import ReplicaPool
from tests.support.fake_replicas import FakeReplica, start_fakes

GUARD_S = 20  # a hang fails the test instead of blocking CI
SYSTEM = "You answer questions about Kubernetes operators. " * 8


def chat(user: str, system: str = SYSTEM) -> dict:
    return {"model": "myset", "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}


@contextlib.asynccontextmanager
async def gateway_over(fakes: list[FakeReplica], waker=None, **overrides):
    pool = ReplicaPool(f.replica() for f in fakes)
    settings = GatewaySettings(**{"model_name": "myset", "ejection_base_s": 300.0, **overrides})
    gateway = Gateway(settings, pool, waker=waker)
    await gateway.start()
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=GUARD_S) as client:
            yield gateway, client
    finally:
        await gateway.stop()
        for fake in fakes:
            await fake.stop()


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_models_health_and_its_own_metrics():
    fakes = await start_fakes(2)
    async with gateway_over(fakes) as (_, client):
        models = (await client.get("/v1/models")).json()
        assert [m["id"] for m in models["data"]] == ["myset"]
        assert (await client.post("/v1/models")).status_code == 405
        assert (await client.get("/healthz")).status_code == 200
        reply = await client.post("/v1/chat/completions", json=chat("hello"))
        text = (await client.get("/metrics")).text
    served_by = reply.headers["x-kaito-replica"]
    assert reply.status_code == 200 and reply.json()["replica"] == served_by
    assert metric(text, "kaito_gateway_backend_requests_total", backend=served_by, code="200") == 1
    assert metric(text, "kaito_gateway_backend_outstanding_requests", backend="r0") == 0
    assert metric(text, "kaito_gateway_responses_total", code="200") == 1
    assert sum(f.served for f in fakes) == 1  # /v1/models, /healthz and /metrics never reach a replica


async def test_sixteen_concurrent_requests_spread_over_both_replicas():
    fakes = await start_fakes(2)
    release = asyncio.Event()

    def arrived() -> None:
        if sum(f.arrived for f in fakes) == 16:
            release.set()

    for fake in fakes:
        fake.hold, fake.on_arrival = release, arrived
    async with gateway_over(fakes) as (_, client), asyncio.timeout(GUARD_S):
        replies = await asyncio.gather(*(client.post("/v1/chat/completions", json=chat(f"question {i}", system=f"s{i}"))
                                         for i in range(16)))
    assert {r.status_code for r in replies} == {200}
    counts = Counter(r.headers["x-kaito-replica"] for r in replies)
    assert counts == Counter({f.name: f.served for f in fakes})
    # all sixteen were outstanding at once: the load cap ceil(1.25 × 16 / 2) = 10 bounds each replica
    assert set(counts) == {"r0", "r1"} and max(counts.values()) <= 10


async def test_same_prefix_sticks_to_one_replica_and_other_prefixes_reach_the_rest():
    fakes = await start_fakes(3)
    async with gateway_over(fakes) as (_, client):
        same = [(await client.post("/v1/chat/completions", json=chat(f"follow-up {i}"))).headers["x-kaito-replica"]
                for i in range(10)]
        other = {(await client.post("/v1/completions", json={"model": "myset", "prompt": f"{i} " * 80})).headers[
            "x-kaito-replica"] for i in range(30)}
        text = (await client.get("/metrics")).text
    assert len(set(same)) == 1
    assert other == {"r0", "r1", "r2"}
    assert metric(text, "kaito_gateway_prefix_affinity_total", placed_by="hit") == 40


async def test_streaming_passes_through_unbuffered():
    fakes = await start_fakes(1)
    fakes[0].mode = "stream"
    request = {**chat("hi"), "stream": True}
    async with gateway_over(fakes) as (_, client), asyncio.timeout(GUARD_S), \
            client.stream("POST", "/v1/chat/completions", json=request) as reply:
        assert reply.headers["content-type"] == "text/event-stream"
        chunks = reply.aiter_raw()
        first = await anext(chunks)
        # the replica sends its second event only now: a buffering gateway would never have
        # delivered the first one (and the guard above would fail the test)
        assert first == b"data: one\n\n"
        fakes[0].proceed.set()
        rest = b"".join([chunk async for chunk in chunks])
    assert rest == b"data: two\n\ndata: [DONE]\n\n"


async def test_a_replica_that_refuses_connections_is_ejected_and_the_rest_succeed():
    fakes = await start_fakes(3)
    async with gateway_over(fakes) as (_, client):
        await fakes[1].stop()  # still listed in the pool: the gateway finds out by trying
        replies = [await client.post("/v1/chat/completions", json=chat(f"q{i}", system=f"s{i}")) for i in range(12)]
        text = (await client.get("/metrics")).text
    assert {r.status_code for r in replies} == {200}
    assert {r.headers["x-kaito-replica"] for r in replies} == {"r0", "r2"}
    assert metric(text, "kaito_gateway_backend_ejections_total", backend="r1") == 1
    assert metric(text, "kaito_gateway_backend_ejected", backend="r1") == 1
    assert metric(text, "kaito_gateway_backend_requests_total", backend="r1", code="error") == 1  # tried once


async def test_a_5xx_is_retried_on_another_replica_and_ejects_its_replica():
    fakes = await start_fakes(2)
    fakes[0].mode, fakes[0].status = "status", 503
    fakes[1].mode, fakes[1].status = "status", 503
    async with gateway_over(fakes) as (_, client):
        # both 503: the client gets the replicas' own answer, with a Retry-After
        both = await client.post("/v1/chat/completions", json=chat("a"))
        assert both.status_code == 503 and "says 503" in both.json()["error"]["message"]
        assert both.headers["retry-after"]
    fakes = await start_fakes(2)
    fakes[0].mode, fakes[0].status = "status", 500
    async with gateway_over(fakes) as (_, client):
        replies = [await client.post("/v1/chat/completions", json=chat(f"q{i}", system=f"s{i}")) for i in range(6)]
        text = (await client.get("/metrics")).text
    assert {(r.status_code, r.headers["x-kaito-replica"]) for r in replies} == {(200, "r1")}
    assert fakes[0].served <= 1 and metric(text, "kaito_gateway_backend_ejections_total", backend="r0") == 1


async def test_429_from_every_replica_passes_through_with_retry_after():
    fakes = await start_fakes(3)
    for fake, after in zip(fakes, ("3", "7", None), strict=True):
        fake.mode, fake.status, fake.retry_after = "status", 429, after
    async with gateway_over(fakes) as (_, client):
        reply = await client.post("/v1/chat/completions", json=chat("busy?"))
        text = (await client.get("/metrics")).text
    assert reply.status_code == 429 and reply.headers["retry-after"] == "7"
    assert [f.served for f in fakes] == [1, 1, 1]  # each tried once, none ejected
    assert metric(text, "kaito_gateway_backend_ejections_total", backend="r0") == 0


async def test_one_busy_replica_sends_the_request_to_the_next():
    fakes = await start_fakes(2)
    fakes[0].mode, fakes[0].status, fakes[0].retry_after = "status", 429, "1"
    async with gateway_over(fakes) as (_, client):
        replies = [await client.post("/v1/chat/completions", json=chat(f"q{i}", system=f"s{i}")) for i in range(4)]
    assert {(r.status_code, r.headers["x-kaito-replica"]) for r in replies} == {(200, "r1")}


async def test_a_body_broken_midway_is_not_retried_and_not_passed_as_complete():
    fakes = await start_fakes(2)
    for fake in fakes:
        fake.mode = "break"
    async with gateway_over(fakes) as (_, client):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/v1/chat/completions", json=chat("x"))
        assert (await client.get("/healthz")).status_code == 200  # the gateway serves on
    assert sum(f.served for f in fakes) == 1


async def test_a_client_that_hangs_up_cancels_the_upstream_request():
    fakes = await start_fakes(1)
    fakes[0].mode = "hang"
    async with gateway_over(fakes) as (gateway, client), asyncio.timeout(GUARD_S):
        host, port = gateway.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = json.dumps(chat("never mind")).encode()
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        while not fakes[0].arrived:
            await asyncio.sleep(0.01)
        writer.close()
        await fakes[0].cancelled.wait()  # the replica's request was cancelled: its connection closed
        while gateway.outstanding.get("r0"):
            await asyncio.sleep(0.01)
        text = (await client.get("/metrics")).text
    assert metric(text, "kaito_gateway_client_disconnects_total") == 1


async def test_limits_on_body_headers_and_requests_in_flight():
    fakes = await start_fakes(1)
    fakes[0].hold = asyncio.Event()
    async with gateway_over(fakes, limits=FrontLimits(max_body=1000, max_header_bytes=4096), max_in_flight=1) as (
            _, client), asyncio.timeout(GUARD_S):
        big = await client.post("/v1/completions", content=b"x" * 2000)
        assert big.status_code == 413 and "1000 bytes" in big.json()["error"]["message"]
        headers = await client.get("/v1/models", headers={"x-big": "y" * 8000})
        assert headers.status_code == 431
        first = asyncio.create_task(client.post("/v1/completions", json={"prompt": "a"}))
        while not fakes[0].arrived:
            await asyncio.sleep(0.01)
        second = await client.post("/v1/completions", json={"prompt": "b"})
        assert second.status_code == 429 and second.headers["retry-after"] == "1"
        fakes[0].hold.set()
        assert (await first).status_code == 200
    assert fakes[0].served == 1


async def test_no_replica_and_nothing_to_wake_is_503_at_once():
    async with gateway_over([]) as (_, client):
        reply = await client.post("/v1/chat/completions", json=chat("anyone?"))
        health = await client.get("/healthz")
    assert reply.status_code == 503 and reply.headers["retry-after"] == "10"
    assert "no replica of myset is running" in reply.json()["error"]["message"]
    assert health.status_code == 503


class SilentWaker:
    def __init__(self) -> None:
        self.calls = 0

    def wake(self) -> None:
        self.calls += 1


async def test_a_held_request_gets_503_when_no_replica_comes():
    waker = SilentWaker()
    async with gateway_over([], waker=waker, wake_timeout_s=0.2, retry_after_s=30) as (_, client):
        reply = await client.post("/v1/chat/completions", json=chat("hello?"))
        text = (await client.get("/metrics")).text
    assert reply.status_code == 503 and reply.headers["retry-after"] == "30"
    assert "became ready within 0.2s" in reply.json()["error"]["message"]
    assert waker.calls == 1 and metric(text, "kaito_gateway_wakeups_total") == 1
    assert metric(text, "kaito_gateway_held_requests") == 0


async def test_a_client_that_hangs_up_while_held_is_let_go():
    waker = SilentWaker()
    async with gateway_over([], waker=waker, wake_timeout_s=GUARD_S) as (gateway, client), asyncio.timeout(GUARD_S):
        host, port = gateway.url.removeprefix("http://").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        while not waker.calls:
            await asyncio.sleep(0.01)
        assert gateway.demand().held == 1
        writer.close()
        while gateway.demand().held:
            await asyncio.sleep(0.01)
        text = (await client.get("/metrics")).text
    assert metric(text, "kaito_gateway_held_requests") == 0


async def test_a_request_whose_headers_never_finish_gets_408():
    fakes = await start_fakes(1)
    async with gateway_over(fakes, limits=FrontLimits(header_timeout_s=0.2)) as (gateway, _), \
            asyncio.timeout(GUARD_S):
        host, port = gateway.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /v1/completions HTTP/1.1\r\nhost: x\r\n")  # and nothing more
        await writer.drain()
        answer = await reader.read()  # the gateway answers, then closes
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and fakes[0].arrived == 0


BASE_PROFILE_PROBE = """
import asyncio, sys
for name in ("fastapi", "starlette", "uvicorn", "sse_starlette", "torch", "transformers"):
    sys.modules[name] = None  # any import of them now fails: the base profile has none of them
import httpx
from kaito.operator.serving.endpoint import InferenceSetEndpoint
from kaito.operator.serving.gateway import GatewaySettings
from kaito.operator.serving.policy import MetricRule, ScalePolicy
from kaito.operator.serving.replicas import CallbackScaleTarget, Scale

async def main():
    async def read():
        return Scale(spec_replicas=0, ready_replicas=0)
    async def write(n):
        pass
    policy = ScalePolicy(metrics=(MetricRule(up_threshold=5, down_threshold=1),), min_replicas=0, max_replicas=2)
    endpoint = InferenceSetEndpoint(GatewaySettings(model_name="s", wake_timeout_s=0.1),
                                    target=CallbackScaleTarget(read, write), policy=policy)
    await endpoint.start()
    async with httpx.AsyncClient(base_url=endpoint.url) as client:
        models = (await client.get("/v1/models")).json()["data"][0]["id"]
        held = (await client.post("/v1/completions", json={"prompt": "x"})).status_code
        scraped = "kaito_autoscaler_desired_replicas" in (await client.get("/metrics")).text
    await endpoint.stop()
    print(models, held, scraped)

asyncio.run(main())
"""


def test_the_gateway_and_autoscaler_run_without_the_runtime_profile():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", BASE_PROFILE_PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["s", "503", "True"]
