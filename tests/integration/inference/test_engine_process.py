"""The transformers engine in its own process: requests cross it, cancels reach it, its death is seen.

The session's `server` fixture already runs every other inference test through the engine process
(it is the default); these tests look at what only a second process can get wrong.
"""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.embedded import start_server
from kaito.runtime.inference.engines.engine_process import ProcessEngine
from kaito.runtime.inference.engines.transformers_engine import TransformersEngine
from kaito.runtime.inference.settings import ServerSettings
from tests.integration.inference.conftest import SERVED
from tests.integration.inference.test_server_behaviour import scrape, total


def _settings(tiny_model, **overrides) -> ServerSettings:
    return ServerSettings(model=str(tiny_model.path), served_model_name=SERVED, adapters_dir=None,
                          host="127.0.0.1", port=0, **overrides)


def _wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


@pytest.fixture
def process_server(tiny_model):
    running = start_server(_settings(tiny_model, engine_process=True))
    running.wait_ready()
    yield running
    running.stop()
    engine = running.engine
    _wait_until(lambda: engine._proc.poll() is not None, "the engine process ended with its server")


def test_requests_cross_the_engine_process_and_answer_as_in_process(process_server, tiny_model):
    engine = process_server.engine
    assert isinstance(engine, ProcessEngine) and engine.pid not in (None, os.getpid())
    body = {"model": SERVED, "prompt": "hello there", "max_tokens": 8, "temperature": 0, "logprobs": 2}
    crossed = httpx.post(process_server.base_url + "/v1/completions", json=body, timeout=60)
    assert crossed.status_code == 200
    with start_server(_settings(tiny_model, engine_process=False)) as local:
        local.wait_ready()
        assert isinstance(local.engine, TransformersEngine)
        here = httpx.post(local.base_url + "/v1/completions", json=body, timeout=60)
    assert crossed.json()["choices"] == here.json()["choices"]
    # checked in the server process, before the engine is asked: a 400 that never reaches it
    too_long = httpx.post(process_server.base_url + "/v1/completions", timeout=60,
                          json={**body, "prompt": [5] * 10, "max_tokens": 100_000})
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "context_length_exceeded"
    assert engine.stats().prefilled_rows == 1
    metrics = scrape(process_server.base_url)
    assert total(metrics, "kaito:prefill_rows_total") == 1 and total(metrics, "kaito:prefill_batches_total") == 1


def test_a_client_that_leaves_stops_its_row_in_the_engine_process(process_server):
    engine = process_server.engine
    body = {"model": SERVED, "prompt": "hello", "max_tokens": 400, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", process_server.base_url + "/v1/completions", json=body, timeout=60) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            if line.startswith("data: {") and '"text":""' not in line:
                break
    # the engine process itself reports the row dropped unfinished (it would report `length` otherwise)
    _wait_until(lambda: engine.stats().aborted == 1, "the engine process dropped the row")
    _wait_until(lambda: engine.stats() == api.EngineStats(), "nothing runs in the engine process")


def test_a_killed_engine_process_ends_open_streams_and_fails_health(process_server):
    engine, base = process_server.engine, process_server.base_url
    body = {"model": SERVED, "prompt": "hello", "max_tokens": 400, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", base + "/v1/completions", json=body, timeout=60) as reply:
        assert reply.status_code == 200
        lines = reply.iter_lines()
        for line in lines:
            if line.startswith("data: {"):
                break
        os.kill(engine.pid, signal.SIGKILL)
        rest = [line[6:] for line in lines if line.startswith("data: ")]
    assert rest[-1] == "[DONE]"
    error = json.loads(rest[-2])["error"]
    assert "engine process exited" in error["message"] and error["type"] == "server_error"

    health = httpx.get(base + "/health", timeout=10)
    assert health.status_code == 503 and "engine process exited" in health.json()["detail"]
    assert httpx.get(base + "/ready", timeout=10).status_code == 503
    refused = httpx.post(base + "/v1/completions", json={**body, "stream": False}, timeout=10)
    assert refused.status_code == 503 and "engine process exited" in refused.json()["error"]["message"]
    streamed = httpx.post(base + "/v1/completions", json=body, timeout=10)
    assert streamed.status_code == 503  # refused before the stream starts
    assert httpx.get(base + "/metrics", timeout=10).status_code == 200
    assert engine.load_state().error is not None and not engine.load_state().ready


def test_a_model_that_cannot_load_reports_the_engine_process_reason(tmp_path):
    settings = ServerSettings(model=str(tmp_path / "missing"), adapters_dir=None, host="127.0.0.1", port=0)
    with start_server(settings) as running:
        with pytest.raises(RuntimeError, match="missing"):
            running.wait_ready()
        reply = httpx.get(running.base_url + "/health", timeout=10)
        assert reply.status_code == 503 and "missing" in reply.json()["detail"]
