"""The local gateway in front of two real model servers (`kaito.runtime.inference` over the tiny
model), driven by the official `openai` client: what a user of an InferenceSet's endpoint sees.

Which replica served what is read from the replicas' own `/metrics` (vLLM's
`vllm:request_success_total`), not from the gateway. Needs the runtime profile (skipped without).
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("openai")

from openai import AsyncOpenAI  # noqa: E402

from kaito.operator.serving.gateway import Gateway, GatewaySettings  # noqa: E402
from kaito.operator.serving.replicas import Replica, ReplicaPool  # noqa: E402
from kaito.runtime.inference.embedded import start_server  # noqa: E402
from kaito.runtime.inference.settings import ServerSettings  # noqa: E402
from tests.integration.operator.test_gateway import metric  # noqa: E402

pytestmark = pytest.mark.slow
SET = "myset"
SYSTEM = "You are the assistant of a platform team. Answer briefly and name the Kubernetes objects. " * 3


@pytest.fixture(scope="module")
def replicas(tiny_model):
    servers = {}
    try:
        for name in ("myset-a", "myset-b"):
            settings = ServerSettings(model=tiny_model.repo_id, served_model_name=SET, adapters_dir=None,
                                      host="127.0.0.1", port=0, max_running=8)
            servers[name] = start_server(settings)
        for server in servers.values():
            server.wait_ready()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def served(server) -> float:
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    return sum(metric(text, "vllm:request_success_total", finished_reason=reason) for reason in ("stop", "length"))


def messages(user: str, system: str = SYSTEM) -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


async def test_an_inferenceset_endpoint_over_two_model_servers(replicas):
    pool = ReplicaPool(Replica(name=name, base_url=server.base_url) for name, server in replicas.items())
    gateway = Gateway(GatewaySettings(model_name=SET, ejection_base_s=300.0), pool)
    await gateway.start()
    client = AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    try:
        async with asyncio.timeout(240):
            assert [m.id async for m in client.models.list()] == [SET]

            # 16 concurrent requests with distinct conversations: both replicas serve some
            before = {name: served(s) for name, s in replicas.items()}
            answers = await asyncio.gather(*(client.chat.completions.create(
                model=SET, messages=messages(f"question {i}", system=f"Topic {i}. {SYSTEM}"), max_tokens=4)
                for i in range(16)))
            assert all(a.choices[0].message.content is not None and a.model == SET for a in answers)
            spread = {name: served(s) - before[name] for name, s in replicas.items()}
            assert sum(spread.values()) == 16 and min(spread.values()) > 0, spread

            # one conversation's follow-ups (same system prompt and start) stay on one replica
            before = {name: served(s) for name, s in replicas.items()}
            for i in range(6):
                raw = await client.chat.completions.with_raw_response.create(
                    model=SET, messages=messages(f"follow-up {i}"), max_tokens=2)
                assert raw.headers["x-kaito-replica"] in replicas
            sticky = {name: served(s) - before[name] for name, s in replicas.items()}
            assert sorted(sticky.values()) == [0, 6], sticky

            # streaming passes through as server-sent events
            stream = await client.chat.completions.create(model=SET, messages=messages("stream please"),
                                                          max_tokens=5, stream=True)
            chunks = [chunk async for chunk in stream]
            assert chunks[-1].choices[0].finish_reason in ("stop", "length") and len(chunks) >= 2

            # a replica killed mid-test is taken out; every request still succeeds on the other
            await asyncio.to_thread(replicas["myset-b"].stop)
            answers = await asyncio.gather(*(client.completions.create(
                model=SET, prompt=f"after the loss {i}: " * 3, max_tokens=2) for i in range(8)))
            assert len(answers) == 8 and all(a.choices for a in answers)
            async with httpx.AsyncClient() as http:  # the gateway runs on this loop: never block it
                text = (await http.get(gateway.url + "/metrics")).text
            assert metric(text, "kaito_gateway_backend_ejections_total", backend="myset-b") == 1
            assert metric(text, "kaito_gateway_backend_ejected", backend="myset-b") == 1
            assert metric(text, "kaito_gateway_responses_total", code="200") == 16 + 6 + 1 + 8
    finally:
        await client.close()
        with contextlib.suppress(Exception):
            await gateway.stop()
