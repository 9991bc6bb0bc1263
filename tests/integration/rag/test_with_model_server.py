"""RAG chat through our real model server (`kaito.runtime.inference` over the tiny Llama, on loopback)."""

from __future__ import annotations

import pytest

from tests.integration.rag.conftest import corpus_docs


@pytest.fixture(scope="module")
def model_server(tiny_model):
    from kaito.runtime.inference.embedded import start_server
    from kaito.runtime.inference.settings import ServerSettings

    settings = ServerSettings(model=tiny_model.repo_id, served_model_name="tiny", adapters_dir=None,
                              host="127.0.0.1", port=0, max_running=4)
    running = start_server(settings)
    running.wait_ready()
    yield running
    running.stop()


async def test_chat_with_index_answers_through_the_model_server(make_rag, model_server):
    rag = await make_rag(llm_url=f"{model_server.base_url}/v1/chat/completions", llm_context_window=512)
    await rag.index("docs", *corpus_docs())
    body = {"index_name": "docs", "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "What does BM25 rank documents by?"}]}
    response = await rag.client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == "tiny"  # no model in the request: the first id of the server's /v1/models
    assert isinstance(answer["choices"][0]["message"]["content"], str)
    assert answer["usage"]["completion_tokens"] <= 8 and answer["usage"]["prompt_tokens"] > 20  # context went in
    assert answer["source_nodes"] and "BM25 ranks documents" in answer["source_nodes"][0]["text"]

    plain = await rag.client.post("/v1/chat/completions", json={
        "model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
    assert plain.status_code == 200 and "source_nodes" not in plain.json()
    async with rag.client.stream("POST", "/v1/chat/completions", json={
            "model": "tiny", "max_tokens": 4, "stream": True, "messages": [{"role": "user", "content": "hi"}]}) as s:
        assert s.status_code == 200
        text = (await s.aread()).decode()
    assert text.rstrip().endswith("data: [DONE]")
    unknown = await rag.client.post("/v1/chat/completions", json={
        "model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]})
    assert unknown.status_code == 404  # the model server's answer, relayed
    await rag.stop()
