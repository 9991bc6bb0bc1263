"""`/v1/chat/completions` (§4.5) against a fake OpenAI endpoint that records what it was sent."""

from __future__ import annotations

import httpx

from tests.integration.rag.conftest import FakeLLM, corpus_docs

CHAT_URL = "http://llm.test/v1/chat/completions"


async def _rag(make_rag, llm: FakeLLM, **overrides):
    rag = await make_rag(llm_url=overrides.pop("llm_url", CHAT_URL), llm_secret="s3cret",
                         llm_transport=llm.transport(), **overrides)
    await rag.index("docs", *corpus_docs())
    return rag


async def test_rag_answer_carries_source_nodes_and_sends_context(make_rag):
    llm = FakeLLM("Operators reconcile.")
    rag = await _rag(make_rag, llm)
    body = {"index_name": "docs", "model": "m", "max_tokens": 500, "temperature": 0,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "How do kubernetes operators reconcile resources?"}]}
    response = await rag.client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["object"] == "chat.completion" and answer["model"] == "m"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "Operators reconcile."}
    assert answer["usage"] == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    sources = answer["source_nodes"]
    assert sources and "Kubernetes operators" in sources[0]["text"]
    assert {"doc_id", "node_id", "text", "score", "metadata"} <= set(sources[0])
    path, sent = llm.requests[-1]
    assert path == "/v1/chat/completions" and sent["model"] == "m" and sent["temperature"] == 0
    assert sent["messages"][0]["role"] == "system" and "Kubernetes operators reconcile" in sent["messages"][0]["content"]
    assert sent["messages"][-1] == {"role": "user", "content": body["messages"][1]["content"]}
    assert 0 < sent["max_tokens"] <= 500
    assert llm.last_headers["authorization"] == "Bearer s3cret"
    await rag.stop()


async def test_statuses_of_kaito(make_rag):
    llm = FakeLLM()
    rag = await _rag(make_rag, llm)
    user = [{"role": "user", "content": "fox?"}]

    async def status(body):
        return (await rag.client.post("/v1/chat/completions", json=body)).status_code

    assert await status({"messages": user, "tools": [{"type": "function", "function": {"name": "f"}}]}) == 400
    assert await status({"messages": user, "functions": [{"name": "f"}]}) == 400
    assert await status({"messages": user, "n": 2}) == 400
    assert await status({"messages": user, "index_name": "nope"}) == 404
    assert await status({"messages": user, "index_name": "docs", "context_token_ratio": 0.9}) == 400
    assert await status({"messages": user, "index_name": "docs", "stream": True}) == 400
    assert await status({"messages": []}) == 400
    assert await status({"messages": [{"content": "no role"}]}) == 400
    assert await status({"index_name": "docs", "messages": [{"role": "user", "content": "x" * 400}]}) == 200
    assert llm.requests == [("/v1/chat/completions", llm.requests[0][1])]  # only the last one reached the LLM
    await rag.stop()


async def test_prompt_over_the_window_is_400_and_max_tokens_is_clamped(make_rag):
    llm = FakeLLM()
    rag = await _rag(make_rag, llm, llm_context_window=400)
    too_long = {"index_name": "docs", "messages": [{"role": "user", "content": "fox " * 400}]}
    response = await rag.client.post("/v1/chat/completions", json=too_long)
    assert response.status_code == 400 and "context window" in response.json()["detail"]
    ok = {"index_name": "docs", "max_tokens": 100, "messages": [{"role": "user", "content": "brown fox?"}]}
    answer = (await rag.client.post("/v1/chat/completions", json=ok)).json()
    assert answer["source_nodes"] and llm.requests[-1][1]["max_tokens"] == 100
    unbounded = {"index_name": "docs", "messages": [{"role": "user", "content": "brown fox?"}]}
    assert (await rag.client.post("/v1/chat/completions", json=unbounded)).json()["source_nodes"]
    sent = llm.requests[-1][1]
    assert sent["max_tokens"] >= 150 and sent["max_tokens"] + len(sent["messages"][0]["content"]) // 3 <= 400
    greedy = {"index_name": "docs", "max_tokens": 100000, "messages": [{"role": "user", "content": "brown fox?"}]}
    assert "source_nodes" not in (await rag.client.post("/v1/chat/completions", json=greedy)).json()  # no room
    await rag.stop()


async def test_passthrough_without_index_other_roles_and_non_text(make_rag):
    llm = FakeLLM("direct")
    rag = await _rag(make_rag, llm)
    plain = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "context_token_ratio": 0.5}
    answer = (await rag.client.post("/v1/chat/completions", json=plain)).json()
    assert answer["choices"][0]["message"]["content"] == "direct" and "source_nodes" not in answer
    assert llm.requests[-1][1] == {"model": "m", "messages": plain["messages"]}  # our keys stripped
    tool_role = {"index_name": "docs", "messages": [{"role": "user", "content": "fox"},
                                                    {"role": "tool", "content": "42", "tool_call_id": "t"}]}
    assert (await rag.client.post("/v1/chat/completions", json=tool_role)).status_code == 200
    assert llm.requests[-1][1]["messages"] == tool_role["messages"]
    image = {"index_name": "docs", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}
    assert (await rag.client.post("/v1/chat/completions", json=image)).status_code == 200
    assert llm.requests[-1][1]["messages"] == image["messages"]
    await rag.stop()


async def test_streaming_passthrough_relays_sse(make_rag):
    llm = FakeLLM("one two three")
    rag = await _rag(make_rag, llm)
    async with rag.client.stream("POST", "/v1/chat/completions",
                                 json={"stream": True, "messages": [{"role": "user", "content": "hi"}]}) as response:
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-cache" and response.headers["x-accel-buffering"] == "no"
        assert response.headers["content-type"].startswith("text/event-stream")
        text = (await response.aread()).decode()
    assert text.count("data: ") == 4 and text.rstrip().endswith("data: [DONE]") and '"three"' in text
    await rag.stop()


async def test_no_inference_url_is_503(make_rag):
    rag = await make_rag()
    response = await rag.client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 503 and "InferenceService not configured" in response.json()["detail"]
    await rag.stop()


async def test_unreachable_and_failing_llm_are_clear_errors(make_rag):
    def refuse(request):
        raise httpx.ConnectError("connection refused")

    rag = await make_rag(llm_url=CHAT_URL, llm_transport=httpx.MockTransport(refuse))
    await rag.index("docs", *corpus_docs())
    for body in ({"messages": [{"role": "user", "content": "x"}]},
                 {"index_name": "docs", "messages": [{"role": "user", "content": "brown fox"}]}):
        response = await rag.client.post("/v1/chat/completions", json=body)
        assert response.status_code == 502
        assert "LLM_INFERENCE_URL" in response.json()["detail"] and "unreachable" in response.json()["detail"]
    await rag.stop()
    llm = FakeLLM(fail_with=400)
    rag = await _rag(make_rag, llm)
    response = await rag.client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 400 and "upstream says no" in response.json()["detail"]
    await rag.stop()


async def test_completions_endpoint_and_model_from_v1_models(make_rag):
    llm = FakeLLM("done")
    rag = await _rag(make_rag, llm, llm_url="http://llm.test/v1/completions")
    body = {"index_name": "docs", "messages": [{"role": "user", "content": "What does BM25 rank?"}]}
    answer = (await rag.client.post("/v1/chat/completions", json=body)).json()
    assert answer["choices"][0]["message"]["content"] == "done" and answer["model"] == "served-model"
    path, sent = llm.requests[-1]
    assert path == "/v1/completions" and sent["model"] == "served-model"
    assert "BM25 ranks documents" in sent["prompt"] and sent["prompt"].endswith("assistant: ")
    plain = await rag.client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert plain.status_code == 400 and "/chat/completions" in plain.json()["detail"]
    await rag.stop()
