"""KAITO's /chat, batching under concurrency, metrics, adapters, readiness, overload and bad input."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kaito.runtime.inference import engine as api
from tests.integration.inference.conftest import SERVED


def scrape(base_url: str, headers: dict | None = None) -> dict[tuple[str, tuple], float]:
    text = httpx.get(base_url + "/metrics", headers=headers).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples, name: str, **labels) -> float:
    return sum(v for (n, lab), v in samples.items()
               if n == name and all(dict(lab).get(k) == val for k, val in labels.items()))


# --- KAITO /chat ---------------------------------------------------------------------------------
def test_kaito_chat_text_generation_with_generate_kwargs(server):
    reply = httpx.post(server.base_url + "/chat", json={
        "prompt": "hello world", "generate_kwargs": {"max_new_tokens": 6, "do_sample": False, "min_new_tokens": 6}},
        timeout=60)
    assert reply.status_code == 200
    result = reply.json()["Result"]
    assert result.startswith("hello world") and len(result) > len("hello world")
    short = httpx.post(server.base_url + "/chat", json={
        "prompt": "hello world", "return_full_text": False,
        "generate_kwargs": {"max_new_tokens": 6, "do_sample": False, "min_new_tokens": 6}}, timeout=60)
    assert "hello world" + short.json()["Result"] == result
    as_string = httpx.post(server.base_url + "/chat", json={
        "prompt": "hello world", "generate_kwargs": {"max_new_tokens": 6, "do_sample": "False", "min_new_tokens": 6}},
        timeout=60)
    assert as_string.json()["Result"] == result  # "False" is greedy, as the boolean is


def test_kaito_chat_missing_prompt_and_bad_kwargs_are_400(server):
    missing = httpx.post(server.base_url + "/chat", json={"generate_kwargs": {"max_length": 20}})
    assert missing.status_code == 400
    assert missing.json() == {"detail": "Text generation parameter prompt required"}  # KAITO's text
    beams = httpx.post(server.base_url + "/chat", json={"prompt": "hi", "generate_kwargs": {"num_beams": 4}})
    assert beams.status_code == 400 and "num_beams" in beams.json()["detail"]
    vague = httpx.post(server.base_url + "/chat", json={"prompt": "hi", "generate_kwargs": {"do_sample": "nope"}})
    assert vague.status_code == 400 and "generate_kwargs.do_sample" in vague.json()["detail"]


def test_health_routes_after_load(server):
    assert httpx.get(server.base_url + "/").json() == {"message": "Server is running"}
    assert httpx.get(server.base_url + "/healthz").json() == {"status": "Healthy"}
    assert httpx.get(server.base_url + "/health").json() == {"status": "Healthy"}
    assert httpx.get(server.base_url + "/ready").status_code == 200


# --- concurrency and metrics ---------------------------------------------------------------------
async def test_16_concurrent_streams_complete_with_requested_counts_in_batches(server):
    before = scrape(server.base_url)
    client = openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0, timeout=120)

    async def one(i: int) -> tuple[int, str | None, int]:
        stream = await client.chat.completions.create(
            model=SERVED, messages=[{"role": "user", "content": f"request {i}"}], max_tokens=8 + i,
            temperature=0.7, seed=i, stream=True, stream_options={"include_usage": True},
            extra_body={"ignore_eos": True})
        finish, usage = None, None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            if chunk.usage:
                usage = chunk.usage.completion_tokens
        return i, finish, usage

    results = await asyncio.gather(*(one(i) for i in range(16)))
    assert [(i, "length", 8 + i) for i in range(16)] == sorted(results)

    after = scrape(server.base_url)
    generated = total(after, "vllm:generation_tokens_total") - total(before, "vllm:generation_tokens_total")
    assert generated == sum(8 + i for i in range(16))
    succeeded = (total(after, "vllm:request_success_total", finished_reason="length")
                 - total(before, "vllm:request_success_total", finished_reason="length"))
    assert succeeded == 16
    # batches larger than one: some decode steps ran with more than one row
    single = total(after, "kaito:batch_size_bucket", le="1.0") - total(before, "kaito:batch_size_bucket", le="1.0")
    steps = total(after, "kaito:batch_size_count") - total(before, "kaito:batch_size_count")
    assert steps > single
    batch_sum = total(after, "kaito:batch_size_sum") - total(before, "kaito:batch_size_sum")
    assert batch_sum / steps > 1.0


def test_metrics_parse_and_counters_move(server):
    before = scrape(server.base_url)
    httpx.post(server.base_url + "/v1/completions", json={"model": SERVED, "prompt": "hi", "max_tokens": 3,
                                                         "ignore_eos": True}, timeout=60)
    httpx.post(server.base_url + "/v1/completions", json={"model": "missing", "prompt": "hi"})
    after = scrape(server.base_url)
    assert (total(after, "http_requests_total", handler="/v1/completions", status="200")
            - total(before, "http_requests_total", handler="/v1/completions", status="200")) == 1
    assert (total(after, "http_requests_total", handler="/v1/completions", status="404")
            - total(before, "http_requests_total", handler="/v1/completions", status="404")) == 1
    assert total(after, "vllm:generation_tokens_total") - total(before, "vllm:generation_tokens_total") == 3
    assert total(after, "vllm:prompt_tokens_total") > total(before, "vllm:prompt_tokens_total")
    assert (total(after, "vllm:time_to_first_token_seconds_count")
            == total(before, "vllm:time_to_first_token_seconds_count") + 1)
    assert total(after, "vllm:inter_token_latency_seconds_count") >= total(
        before, "vllm:inter_token_latency_seconds_count") + 2
    assert total(after, "vllm:e2e_request_latency_seconds_count") > 0
    assert total(after, "kaito:model_load_seconds") > 0
    assert ("vllm:num_requests_running", (("model_name", SERVED),)) in after
    assert ("vllm:num_requests_waiting", (("model_name", SERVED),)) in after


# --- adapters ------------------------------------------------------------------------------------
_ADAPTER_MESSAGES = [{"role": "user", "content": "hello world"}]


def ask_greedy(base_url: str, model: str) -> str:
    reply = httpx.post(base_url + "/v1/chat/completions", json={
        "model": model, "messages": _ADAPTER_MESSAGES, "max_tokens": 10, "temperature": 0, "min_tokens": 10},
        timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def base_greedy(tiny_model) -> str:
    """The base model's greedy answer, computed with plain transformers outside the server."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model.path)
    base = AutoModelForCausalLM.from_pretrained(tiny_model.path)
    prompt = tokenizer.apply_chat_template(_ADAPTER_MESSAGES, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        out = base.generate(ids, max_new_tokens=10, min_new_tokens=10, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_adapter_changes_output_and_strength_zero_is_base(server, base_greedy):
    assert ask_greedy(server.base_url, SERVED) == base_greedy  # the KAITO mix with strength 0 is the base model
    assert ask_greedy(server.base_url, "alpha") != base_greedy  # the adapter by name is the adapter alone


def test_adapter_mix_at_nonzero_strength_is_applied(mixed_server, base_greedy):
    strength, running = mixed_server
    mixed = ask_greedy(running.base_url, SERVED)
    alone = ask_greedy(running.base_url, "alpha")
    assert alone != base_greedy
    assert mixed != base_greedy  # a mix that were never applied would answer like the base model
    if strength == 1.0:
        assert mixed == alone  # one adapter at full strength is that adapter
    else:
        assert mixed != alone  # half strength is neither the base nor the full adapter


# --- bad input -----------------------------------------------------------------------------------
def test_malformed_json_and_schema_errors_are_openai_400s(server):
    broken = httpx.post(server.base_url + "/v1/chat/completions", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert broken.status_code == 400 and "error" in broken.json()
    no_messages = httpx.post(server.base_url + "/v1/chat/completions", json={"model": SERVED})
    assert no_messages.status_code == 400
    assert "messages" in no_messages.json()["error"]["message"]
    bad_temp = httpx.post(server.base_url + "/v1/completions", json={"model": SERVED, "prompt": "x",
                                                                     "temperature": 9})
    assert bad_temp.status_code == 400 and "temperature" in bad_temp.json()["error"]["message"]


# --- readiness, auth, conversational mode, overload (gated server) -------------------------------
def test_gated_server_readiness_auth_conversational_and_queue_full(gated_server):
    base = gated_server.base_url
    auth = {"Authorization": "Bearer sekret"}
    engine = gated_server.engine
    assert httpx.get(base + "/").json() == {"message": "Server is running"}
    for path in ("/health", "/healthz"):  # KAITO v0.12 and v0.3.2 probe paths, KAITO's texts
        loading = httpx.get(base + path)
        assert loading.status_code == 503 and loading.json() == {"detail": "Model not initialized"}
    assert httpx.get(base + "/ready").status_code == 503
    assert httpx.get(base + "/v1/models", headers=auth).status_code == 503

    engine.load_gate.set()
    gated_server.wait_ready()
    assert httpx.get(base + "/healthz").json() == {"status": "Healthy"}
    assert httpx.get(base + "/health").json() == {"status": "Healthy"}
    assert httpx.get(base + "/v1/models").status_code == 401
    assert httpx.get(base + "/metrics").status_code == 401
    assert httpx.get(base + "/v1/models", headers=auth).status_code == 200

    chat = httpx.post(base + "/chat", headers=auth, timeout=60, json={
        "messages": [{"role": "user", "content": "hi"}], "generate_kwargs": {"max_new_tokens": 4}})
    assert chat.status_code == 200
    assert chat.json()["Result"].startswith("{'role': 'assistant', 'content': ")
    missing = httpx.post(base + "/chat", headers=auth, json={"prompt": "hi"})
    assert missing.status_code == 400
    assert missing.json() == {"detail": "Conversational parameter messages required"}  # KAITO's text

    engine.admit_gate.clear()
    body = {"model": SERVED, "prompt": "hi", "max_tokens": 3, "ignore_eos": True}
    with httpx.Client(base_url=base, headers=auth, timeout=60) as client:
        async def flood():
            async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as aclient:
                # 2 running (max_running) + 2 queued (max_queued) are admitted, the next is refused
                waiting = [asyncio.create_task(aclient.post("/v1/completions", json=body)) for _ in range(4)]
                deadline = time.monotonic() + 30
                while engine.stats().waiting < 4 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                refused = await aclient.post("/v1/completions", json=body)
                engine.admit_gate.set()
                engine._wake.set()
                return refused, await asyncio.gather(*waiting)

        refused, served = asyncio.run(flood())
        assert refused.status_code == 429
        assert refused.headers["Retry-After"].isdigit()
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"  # KAITO's guard and OpenAI's code
        assert [r.status_code for r in served] == [200] * 4
        assert all(json.loads(r.text)["usage"]["completion_tokens"] == 3 for r in served)
        assert client.get("/metrics").status_code == 200


def test_disconnected_stream_stops_its_work(server):
    before = scrape(server.base_url)
    body = {"model": SERVED, "prompt": "hello", "max_tokens": 500, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", server.base_url + "/v1/completions", json=body, timeout=60) as reply:
        assert reply.status_code == 200
        lines = reply.iter_lines()
        for line in lines:
            if line.startswith("data: {"):
                break
    deadline = time.monotonic() + 30
    while server.engine.stats() != api.EngineStats() and time.monotonic() < deadline:
        time.sleep(0.02)
    after = scrape(server.base_url)
    assert (total(after, "vllm:request_success_total", finished_reason="abort")
            - total(before, "vllm:request_success_total", finished_reason="abort")) == 1
    assert total(after, "vllm:generation_tokens_total") - total(before, "vllm:generation_tokens_total") < 500
