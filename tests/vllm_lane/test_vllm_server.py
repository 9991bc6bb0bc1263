"""Our server with the vLLM engine, over real HTTP: vLLM's OpenAI surface, KAITO's additions, overload.

All tests share the session's server (see conftest); the overload test runs last in this module
because it fills the engine's queue.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.vllm_lane.conftest import SERVED

GREEDY = {"temperature": 0.0, "max_tokens": 12}


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_models_list_the_base_and_the_adapter_with_the_files_context(client) -> None:
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {SERVED, "alpha"}
    assert models[SERVED].max_model_len == 256  # vllm.max-model-len of the runtime-parameter file
    assert models["alpha"].parent == SERVED


def test_chat_completion_with_the_openai_client(client) -> None:
    answer = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "hello"}], **GREEDY)
    assert answer.choices[0].message.role == "assistant"
    assert answer.usage.completion_tokens <= 12 and answer.usage.prompt_tokens > 0
    assert answer.system_fingerprint.startswith("vllm-")  # vLLM's own server answered


def test_completion_and_streaming(client) -> None:
    full = client.completions.create(model=SERVED, prompt="the quick brown", **GREEDY, extra_body={"ignore_eos": True})
    assert full.usage.completion_tokens == 12
    chunks = list(client.completions.create(model=SERVED, prompt="the quick brown", stream=True, **GREEDY,
                                            extra_body={"ignore_eos": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == full.choices[0].text
    stream = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "hi"}],
                                            stream=True, stream_options={"include_usage": True}, **GREEDY)
    events = list(stream)
    assert events[-1].usage is not None and events[-1].usage.completion_tokens >= 1
    assert any(e.choices and e.choices[0].finish_reason for e in events)


def test_vllms_own_surface_is_there(server, client) -> None:
    tokens = httpx.post(f"{server.base_url}/tokenize", json={"model": SERVED, "prompt": "hello world"}).json()
    assert tokens["count"] == len(tokens["tokens"]) > 0
    scored = client.completions.create(model=SERVED, prompt="hello", max_tokens=3, temperature=0.0, logprobs=2)
    assert len(scored.choices[0].logprobs.top_logprobs) == 3
    picked = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "pick"}],
                                            max_tokens=8, temperature=0.0,
                                            extra_body={"structured_outputs": {"choice": ["yes", "no"]}})
    assert picked.choices[0].message.content in ("yes", "no")


def test_an_adapter_by_name_changes_the_answer(client) -> None:
    prompt = "the quick brown fox"
    base = client.completions.create(model=SERVED, prompt=prompt, **GREEDY, extra_body={"ignore_eos": True})
    tuned = client.completions.create(model="alpha", prompt=prompt, **GREEDY, extra_body={"ignore_eos": True})
    assert tuned.model == "alpha" and tuned.choices[0].text != base.choices[0].text
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-adapter", prompt=prompt, max_tokens=2)


def test_kaito_chat_for_v032_clients(server) -> None:
    answer = httpx.post(f"{server.base_url}/chat", timeout=60, json={
        "prompt": "hello", "return_full_text": True,
        "generate_kwargs": {"max_length": 20, "do_sample": False, "ignore_eos": True}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["Result"].startswith("hello") and len(answer.json()["Result"]) > len("hello")
    missing = httpx.post(f"{server.base_url}/chat", json={"generate_kwargs": {}})
    assert missing.status_code == 400 and "prompt" in missing.json()["detail"]
    wrong = httpx.post(f"{server.base_url}/chat", json={"prompt": "x", "generate_kwargs": {"top_p": "lots"}})
    assert wrong.status_code == 400 and "generate_kwargs.top_p" in wrong.json()["detail"]
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "Healthy"}
    assert httpx.get(f"{server.base_url}/").json() == {"message": "Server is running"}


def test_runtime_parameters_reached_vllm_typed(server) -> None:
    line = next(ln for ln in server.log.read_text().splitlines() if "non-default args" in ln)
    assert "'enforce_eager': True" in line and "'enable_prefix_caching': False" in line
    assert "'max_num_seqs': 2" in line and "'max_model_len': 256" in line
    assert "KV-cache CPU offload is not needed" in server.log.read_text()  # the file's 0.5, on a CPU build


def metric_samples(base_url: str) -> dict[str, float]:
    text = httpx.get(f"{base_url}/metrics").text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def test_metrics_are_vllms_and_ours(server, client) -> None:
    client.completions.create(model=SERVED, prompt="count me", max_tokens=4, temperature=0.0,
                              extra_body={"ignore_eos": True})
    values = metric_samples(server.base_url)
    assert values["vllm:generation_tokens_total"] >= 4 and values["vllm:request_success_total"] >= 1
    assert "vllm:num_requests_waiting" in values and "vllm:num_requests_running" in values
    assert values["kaito_model_download_remaining_seconds"] == 0  # the model was in the cache: done
    assert values["kaito_model_download_speed_bytes_per_second"] == 0
    assert "kaito_ratelimit_rejected_total" in values


async def test_overload_is_429_with_kaitos_body(server) -> None:
    """max-num-seqs 2 (from the file): once 5 are in flight, max(waiting, 5 - 2) = 3 > 2 refuses the rest.

    Twelve requests arrive together; each needs ~240 decode steps and only two run at a time, so the
    first five are still in flight when the others arrive.
    """
    before = metric_samples(server.base_url)["kaito_ratelimit_rejected_total"]
    body = {"model": SERVED, "prompt": "go", "max_tokens": 240, "ignore_eos": True}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=300) as http:
        answers = await asyncio.gather(*(http.post("/v1/completions", json=body) for _ in range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {200, 429} and statuses.count(200) >= 5, statuses
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests" and error["param"] is None
        assert "max-num-seqs (2)" in error["message"]
    rejected = metric_samples(server.base_url)["kaito_ratelimit_rejected_total"] - before
    assert rejected == statuses.count(429)
    again = httpx.post(f"{server.base_url}/v1/completions", json={**body, "max_tokens": 2}, timeout=60)
    assert again.status_code == 200, json.dumps(again.json())  # the queue drained: admitted again
