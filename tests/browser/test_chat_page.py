"""The chat page (`/ui`) in a real browser, against the real model server on the tiny model.

A person types a message and sees the answer stream in; picks the adapter and gets a different
answer; stops a long answer halfway (and the server cancels the request: its abort counter moves);
copies an answer. The same page mounted by a RAG service lists its indexes and shows the
`source_nodes` under the answer (a stand-in RAG app mounts the router exactly as the service does).
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kaito.runtime.inference.embedded import start_server
from kaito.runtime.inference.settings import ServerSettings
from tests.support.browser import browser_context, save_screenshot
from tests.support.lora import build_lora_adapter


@pytest.fixture(scope="module")
def model_server(tiny_model, tmp_path_factory):
    adapters = tmp_path_factory.mktemp("ui-adapters")
    build_lora_adapter(tiny_model.path, adapters / "alpha")
    settings = ServerSettings(model=tiny_model.repo_id, served_model_name="tiny", adapters_dir=adapters,
                              adapter_strengths={"alpha": 0.0}, host="127.0.0.1", port=0, max_running=4)
    running = start_server(settings)
    running.wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with browser_context() as context:
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        yield context


def _metric(base_url: str, name: str, **labels) -> float:
    total = 0.0
    for family in text_string_to_metric_families(httpx.get(base_url + "/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def _ask(page, text: str) -> object:
    """Send `text` and wait for its answer; returns the answer's element."""
    before = page.locator(".msg.assistant").count()
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")
    answer = page.locator(".msg.assistant").nth(before)
    page.wait_for_function("(el) => el.dataset.state && el.dataset.state !== 'streaming'",
                           arg=answer.element_handle(), timeout=60_000)
    return answer


def test_chat_streams_switches_adapter_stops_and_copies(model_server, browser):
    page = browser.new_page()
    page.goto(model_server.base_url + "/ui")
    page.wait_for_function("document.querySelectorAll('#model option').length === 2")
    assert page.locator("#model option").all_inner_texts() == ["tiny", "alpha (adapter of tiny)"]
    assert page.locator("#index-row").is_hidden()  # a model server has no indexes
    page.fill("#temperature", "0")
    page.fill("#max_tokens", "48")

    base = _ask(page, "Hello, who are you?")
    assert base.get_attribute("data-state") == "done"
    base_text = base.locator(".text").inner_text()
    assert base_text.strip()
    # Streamed: the text arrived over several network reads and was drawn chunk by chunk.
    assert int(base.get_attribute("data-reads")) > 1 and int(base.get_attribute("data-chunks")) > 1

    base.locator("button.copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == base_text
    save_screenshot(page, "chat.png")

    page.click("#clear")
    page.select_option("#model", "alpha")
    adapted = _ask(page, "Hello, who are you?")
    assert adapted.get_attribute("data-state") == "done"
    assert adapted.locator(".text").inner_text() != base_text

    # A long answer (the tiny model must not stop at EOS), stopped after its first chunks.
    def long_answer(route):
        body = json.loads(route.request.post_data)
        route.continue_(post_data=json.dumps({**body, "ignore_eos": True}))

    page.route("**/v1/chat/completions", long_answer)
    aborted = _metric(model_server.base_url, "vllm:request_success_total", finished_reason="abort")
    page.click("#clear")
    page.fill("#max_tokens", "400")
    page.fill("#prompt", "Tell me a long story")
    page.press("#prompt", "Enter")
    answer = page.locator(".msg.assistant").last
    page.wait_for_function("(el) => Number(el.dataset.chunks) >= 3", arg=answer.element_handle())
    assert page.locator("#stop").is_visible()
    page.click("#stop")
    page.wait_for_function("(el) => el.dataset.state === 'stopped'", arg=answer.element_handle())
    assert page.locator("#stop").is_hidden()
    deadline = time.monotonic() + 30  # the server notices the closed connection and cancels
    while _metric(model_server.base_url, "vllm:request_success_total", finished_reason="abort") <= aborted:
        assert time.monotonic() < deadline, "the server did not cancel the stopped request"
        time.sleep(0.2)
    assert _metric(model_server.base_url, "vllm:num_requests_running") == 0
    page.close()


@pytest.fixture(scope="module")
def rag_service():
    """A stand-in for the RAG service: KAITO's /indexes and index_name chat, plus our router."""
    import uvicorn
    from fastapi import Body, FastAPI

    from kaito.runtime.ui.router import build_router

    app = FastAPI()
    app.include_router(build_router())
    asked: list[dict] = []

    @app.get("/indexes")
    async def indexes():
        return ["handbook", "faq"]

    @app.post("/v1/chat/completions")
    async def chat(body: dict = Body(...)):
        asked.append(body)
        return {"id": "x", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Leave is 25 days."},
                             "finish_reason": "stop"}],
                "source_nodes": [{"doc_id": "d1", "node_id": "n1", "text": "Employees get 25 days of leave.",
                                  "score": 0.91, "metadata": {}}]}

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", asked
    server.should_exit = True
    thread.join(10)


def test_rag_service_page_lists_indexes_and_shows_sources(rag_service, browser):
    url, asked = rag_service
    page = browser.new_page()
    page.goto(url + "/ui")
    page.wait_for_function("!document.getElementById('index-row').hidden")
    assert page.locator("#index option").all_inner_texts()[1:] == ["handbook", "faq"]
    page.select_option("#index", "faq")
    answer = _ask(page, "How many days of leave?")
    assert answer.locator(".text").inner_text() == "Leave is 25 days."
    assert "Employees get 25 days of leave." in answer.locator(".sources").inner_text()
    assert asked[-1]["index_name"] == "faq" and asked[-1]["stream"] is False
    save_screenshot(page, "chat-rag.png")
    page.close()
