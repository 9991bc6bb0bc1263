"""Prefill: requests that arrive together start in one forward pass, within a token budget; a prompt
longer than the budget is prefilled in chunks between decode steps, with the same result."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.embedded import start_server
from kaito.runtime.inference.engines.transformers_engine import TransformersEngine
from kaito.runtime.inference.settings import ServerSettings
from tests.integration.inference.conftest import SERVED, GatedEngine


def _settings(tiny_model, **overrides) -> ServerSettings:
    return ServerSettings(model=str(tiny_model.path), served_model_name=SERVED, adapters_dir=None,
                          host="127.0.0.1", port=0, **overrides)


def _body(prompt: list[int], **extra) -> dict:
    return {"model": SERVED, "prompt": prompt, "max_tokens": 4, "temperature": 0, "ignore_eos": True, **extra}


async def _arrive_together(running, engine: GatedEngine, prompts: list[list[int]]) -> list[httpx.Response]:
    """Hold admission until every request waits in the engine, then let them in at once."""
    async with httpx.AsyncClient(base_url=running.base_url, timeout=60) as client:
        engine.admit_gate.clear()
        replies = [asyncio.create_task(client.post("/v1/completions", json=_body(p))) for p in prompts]
        while engine.stats().waiting < len(prompts):
            await asyncio.sleep(0.01)
        engine.admit_gate.set()
        engine._wake.set()
        return await asyncio.gather(*replies)


@pytest.mark.parametrize(("budget", "prefills"), [(2048, 1), (12, 4)], ids=["one-pass", "budget-of-two-rows"])
def test_requests_that_arrive_together_are_prefilled_together(tiny_model, budget, prefills):
    settings = _settings(tiny_model, engine_process=False, max_running=8, max_queued=8, max_prefill_tokens=budget)
    engine = GatedEngine(settings)
    engine.load_gate.set()
    with start_server(settings, engine) as running:
        running.wait_ready()
        prompts = [[5 + i, 6, 7, 8, 9] for i in range(8)]  # 5 tokens each: 2 rows fit a budget of 12
        replies = asyncio.run(_arrive_together(running, engine, prompts))
        assert [r.status_code for r in replies] == [200] * 8
        stats = engine.stats()
        assert (stats.prefills, stats.prefilled_rows) == (prefills, 8)
        assert stats.mean_prefill_batch == 8 / prefills
        for prompt, reply in zip(prompts, replies, strict=True):  # batched rows answer as they do alone
            alone = httpx.post(running.base_url + "/v1/completions", json=_body(prompt), timeout=60)
            assert alone.json()["choices"][0]["text"] == reply.json()["choices"][0]["text"]


def test_a_prompt_longer_than_the_budget_is_prefilled_in_chunks_with_the_same_answer(tiny_model):
    prompt = [(7 * i) % 200 + 3 for i in range(100)]
    body = _body(prompt, max_tokens=6, logprobs=1)
    with start_server(_settings(tiny_model, engine_process=False)) as whole:
        whole.wait_ready()
        expected = httpx.post(whole.base_url + "/v1/completions", json=body, timeout=60).json()["choices"][0]
        assert whole.engine.stats().prefills == 1
    with start_server(_settings(tiny_model, max_prefill_tokens=16)) as chunked:  # through the engine process
        chunked.wait_ready()
        got = httpx.post(chunked.base_url + "/v1/completions", json=body, timeout=60).json()["choices"][0]
        stats = chunked.engine.stats()
    assert (stats.prefills, stats.prefilled_rows) == (math.ceil(len(prompt) / 16), 1)
    assert got["logprobs"]["tokens"] == expected["logprobs"]["tokens"]
    assert got["logprobs"]["token_logprobs"] == pytest.approx(expected["logprobs"]["token_logprobs"], abs=1e-3)


async def test_running_streams_keep_decoding_while_a_long_prompt_is_chunked(tiny_model):
    engine = TransformersEngine(_settings(tiny_model, engine_process=False, max_prefill_tokens=16))
    steps: list[int] = []
    engine.observe_steps(steps.append)
    await engine.start()
    try:
        params = api.SamplingParams(max_tokens=300, temperature=0.0, ignore_eos=True)
        running = engine.generate(api.GenerationRequest(request_id="a", prompt_token_ids=(5, 6, 7), params=params))
        await anext(running)
        long_prompt = tuple((7 * i) % 200 + 3 for i in range(100))
        before = len(steps)
        arriving = engine.generate(api.GenerationRequest(
            request_id="b", prompt_token_ids=long_prompt, params=api.SamplingParams(max_tokens=2, temperature=0.0)))
        assert [e.finish_reason async for e in arriving] == [None, "length"]  # its 2nd token: a step of both rows
        window = steps[before:]
        # until it joined the batch, each chunk but the last was followed by a step of the running row alone
        assert window[:window.index(2)].count(1) >= math.ceil(len(long_prompt) / 16) - 1
        await running.aclose()
        await arriving.aclose()
    finally:
        await engine.shutdown()
