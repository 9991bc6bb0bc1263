"""One bad row never hurts the others; overload is a 429 before the stream; disconnects are always seen."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import openai
import pytest

from kaito.runtime.inference import engine as api
from tests.integration.inference.conftest import POISON, SERVED
from tests.integration.inference.test_server_behaviour import scrape, total


def _body(prompt: list[int], **extra) -> dict:
    return {"model": SERVED, "prompt": prompt, "max_tokens": 6, "temperature": 0, "ignore_eos": True, **extra}


async def _read_stream(reply: httpx.Response) -> list[str]:
    return [line[6:] async for line in reply.aiter_lines() if line.startswith("data: ")]


@pytest.mark.parametrize("after", [0, 2], ids=["fails-in-prefill", "fails-in-decode"])
def test_a_failing_row_fails_only_its_own_request(poison_server, after):
    engine = poison_server.engine
    engine.after = after
    good_prompts = [[5, 6, 7 + i] for i in range(3)]

    async def flood():
        async with httpx.AsyncClient(base_url=poison_server.base_url, timeout=60) as client:
            engine.admit_gate.clear()  # hold admission so all rows share one batch
            plain = [asyncio.create_task(client.post("/v1/completions", json=_body(p))) for p in good_prompts]
            bad = asyncio.create_task(client.post("/v1/completions", json=_body([5, POISON, 7])))

            async def streamed(prompt):
                async with client.stream("POST", "/v1/completions", json=_body(prompt, stream=True)) as reply:
                    return reply.status_code, await _read_stream(reply)

            bad_stream = asyncio.create_task(streamed([POISON, 8]))
            good_stream = asyncio.create_task(streamed([9, 10]))
            deadline = time.monotonic() + 30
            while engine.stats().waiting < 6 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert engine.stats().waiting == 6
            engine.admit_gate.set()
            engine._wake.set()
            return (await asyncio.gather(*plain), await bad, await bad_stream, await good_stream)

    plain, bad, bad_stream, good_stream = asyncio.run(flood())
    assert [r.status_code for r in plain] == [200, 200, 200]
    assert all(r.json()["usage"]["completion_tokens"] == 6 for r in plain)
    assert bad.status_code == 500 and "generation failed" in bad.json()["error"]["message"]
    status, events = bad_stream
    assert status == 200 and events[-1] == "[DONE]" and "generation failed" in events[-2]
    status, events = good_stream
    assert status == 200 and events[-1] == "[DONE]"
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "length"
    # the survivors answered exactly as they do alone
    for prompt, reply in zip(good_prompts, plain, strict=True):
        alone = httpx.post(poison_server.base_url + "/v1/completions", json=_body(prompt), timeout=60)
        assert alone.json()["choices"][0]["text"] == reply.json()["choices"][0]["text"]
    assert engine.stats() == api.EngineStats()


async def test_64_streams_over_a_small_queue_get_429_before_the_stream_and_retries_succeed(small_queue_server):
    base = small_queue_server.base_url
    body = {"model": SERVED, "prompt": "hello", "max_tokens": 8, "ignore_eos": True, "stream": True}

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        async def one() -> str:
            async with client.stream("POST", "/v1/completions", json=body) as reply:
                if reply.status_code == 429:
                    assert reply.headers["Retry-After"].isdigit()
                    error = json.loads(await reply.aread())["error"]
                    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests")
                    return "refused"
                assert reply.status_code == 200
                events = await _read_stream(reply)
                assert events[-1] == "[DONE]"
                assert json.loads(events[-2])["choices"][0]["finish_reason"] == "length"
                return "served"

        outcomes = await asyncio.gather(*(one() for _ in range(64)))
    assert outcomes.count("refused") >= 64 - 8 - 8  # 4 running + 4 queued at a time, a few finish early
    assert outcomes.count("served") >= 8
    assert total(scrape(base), "kaito_ratelimit_rejected_total") >= outcomes.count("refused")  # KAITO's counter

    retrying = openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=40, timeout=60)

    async def with_retries() -> int:
        stream = await retrying.completions.create(model=SERVED, prompt="hello", max_tokens=8, stream=True,
                                                   stream_options={"include_usage": True},
                                                   extra_body={"ignore_eos": True})
        return [chunk.usage.completion_tokens async for chunk in stream if chunk.usage][-1]

    assert await asyncio.gather(*(with_retries() for _ in range(64))) == [8] * 64
    assert small_queue_server.app.state.admission.in_flight == 0


def _raw_request(base_url: str, body: dict) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
    return sock


def test_disconnects_are_seen_every_time(server):
    """Plain and streamed requests whose client hangs up mid-generation stop, every time (30 rounds)."""
    rounds, limit = 30, 400
    before = scrape(server.base_url)
    for i in range(rounds):
        sock = _raw_request(server.base_url, {"model": SERVED, "prompt": f"round {i}", "max_tokens": limit,
                                              "ignore_eos": True, "stream": i % 2 == 1})
        deadline = time.monotonic() + 20
        while server.engine.stats().running == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        sock.close()
        deadline = time.monotonic() + 20
        while server.engine.stats() != api.EngineStats() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.engine.stats() == api.EngineStats(), f"round {i}: the request kept running"
    after = scrape(server.base_url)
    aborted = (total(after, "vllm:request_success_total", finished_reason="abort")
               - total(before, "vllm:request_success_total", finished_reason="abort"))
    assert aborted == rounds
    assert total(after, "vllm:generation_tokens_total") - total(before, "vllm:generation_tokens_total") < rounds * limit
    assert server.app.state.admission.in_flight == 0
