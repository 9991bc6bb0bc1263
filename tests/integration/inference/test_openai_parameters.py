"""The OpenAI parameters clients send, through the official `openai` client: each changes the output as
specified. Log-probabilities are checked against the model's own forward pass (plain transformers)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.integration.inference.conftest import SERVED

PROMPT_IDS = [17, 240, 99, 5, 300]


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def reference(tiny_model):
    """The base model and tokenizer, loaded outside the server."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model.path).eval(), AutoTokenizer.from_pretrained(tiny_model.path)


def complete(client, **kwargs):
    base = {"model": SERVED, "prompt": PROMPT_IDS, "max_tokens": 8, "temperature": 0}
    extra = {"ignore_eos": True, **kwargs.pop("extra_body", {})}
    return client.completions.create(**{**base, **kwargs}, extra_body=extra).choices[0]


def test_large_logit_bias_forces_a_token(client, reference):
    _, tokenizer = reference
    forced = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(" the"))[0]
    choice = complete(client, logit_bias={str(forced): 100}, temperature=1.0, seed=1)
    assert choice.text == tokenizer.decode([forced] * 8)
    banned = complete(client, logprobs=1)  # greedy, then the greedy first token banned with -100
    first = banned.logprobs.tokens[0]
    first_id = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(first))[0]
    assert not complete(client, logit_bias={str(first_id): -100}).text.startswith(first)


def test_presence_and_frequency_penalties_change_a_greedy_continuation(client):
    plain = complete(client, max_tokens=40).text
    assert complete(client, max_tokens=40).text == plain  # greedy repeats itself
    assert complete(client, max_tokens=40, presence_penalty=2.0).text != plain
    assert complete(client, max_tokens=40, frequency_penalty=2.0).text != plain


def test_min_p_one_keeps_only_the_best_token(client):
    greedy = complete(client, max_tokens=12).text
    assert complete(client, max_tokens=12, temperature=1.0, seed=3, extra_body={"min_p": 1.0}).text == greedy


def test_logprobs_match_the_models_forward_pass(client, reference):
    import torch

    model, tokenizer = reference
    choice = complete(client, max_tokens=6, logprobs=3)
    with torch.no_grad():
        out = model.generate(torch.tensor([PROMPT_IDS]), max_new_tokens=6, min_new_tokens=6, do_sample=False,
                             output_scores=True, output_logits=True, return_dict_in_generate=True, pad_token_id=0)
    generated = out.sequences[0, len(PROMPT_IDS):].tolist()
    expected = [torch.log_softmax(step[0].float(), -1) for step in out.logits]
    assert choice.logprobs.tokens == [tokenizer.decode([t]) for t in generated]
    for step, token in enumerate(generated):
        assert choice.logprobs.token_logprobs[step] == pytest.approx(float(expected[step][token]), abs=1e-4)
        top = choice.logprobs.top_logprobs[step]
        assert len(top) == 3 and max(top.values()) == pytest.approx(float(expected[step].max()), abs=1e-4)
    assert choice.logprobs.text_offset[0] == 0


def test_chat_logprobs_and_top_logprobs(client):
    reply = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "hello"}],
                                           max_tokens=5, temperature=0, logprobs=True, top_logprobs=2,
                                           extra_body={"ignore_eos": True})
    content = reply.choices[0].logprobs.content
    assert len(content) == 5 and all(len(c.top_logprobs) == 2 for c in content)
    assert "".join(c.token for c in content) == reply.choices[0].message.content
    assert all(c.logprob <= 0 and c.top_logprobs[0].logprob >= c.top_logprobs[1].logprob for c in content)
    stream = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "hello"}],
                                            max_tokens=5, temperature=0, logprobs=True, stream=True,
                                            extra_body={"ignore_eos": True})
    streamed = [c for chunk in stream if chunk.choices and chunk.choices[0].logprobs
                for c in chunk.choices[0].logprobs.content]
    assert [c.logprob for c in streamed] == pytest.approx([c.logprob for c in content], abs=1e-5)


def test_echo_returns_the_prompt_and_its_logprobs(client, reference):
    _, tokenizer = reference
    plain = complete(client, prompt="hello world", max_tokens=4)
    echoed = complete(client, prompt="hello world", max_tokens=4, echo=True, logprobs=1)
    assert echoed.text == "hello world" + plain.text
    prompt_len = len(tokenizer("hello world").input_ids)
    assert len(echoed.logprobs.tokens) == prompt_len + 4
    assert echoed.logprobs.token_logprobs[0] is None and all(
        v is not None for v in echoed.logprobs.token_logprobs[1:])
    streamed = client.completions.create(model=SERVED, prompt="hello world", max_tokens=4, temperature=0,
                                         echo=True, stream=True, extra_body={"ignore_eos": True})
    assert "".join(c.choices[0].text for c in streamed) == echoed.text


def test_response_format_json_schema_and_json_object_give_json(client):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "maximum": 9}},
              "required": ["ok", "n"], "additionalProperties": False}
    for seed in range(3):
        reply = client.chat.completions.create(
            model=SERVED, messages=[{"role": "user", "content": f"answer {seed}"}], max_tokens=40, temperature=1.0,
            seed=seed, response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
        value = json.loads(reply.choices[0].message.content)
        assert set(value) == {"ok", "n"} and isinstance(value["ok"], bool) and reply.choices[0].finish_reason == "stop"
    reply = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "json please"}],
                                           max_tokens=200, temperature=0, response_format={"type": "json_object"},
                                           frequency_penalty=2.0)
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(reply.choices[0].message.content), dict)
    else:  # cut by max_tokens: still a prefix of an object
        assert reply.choices[0].message.content.startswith("{")
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "x"}], max_tokens=2,
                                       response_format={"type": "json_schema", "json_schema": {
                                           "name": "bad", "schema": {"type": "no-such-type"}}})


def test_unknown_fields_are_ignored_and_models_can_be_retrieved(client):
    reply = client.chat.completions.create(model=SERVED, messages=[{"role": "user", "content": "x"}], max_tokens=2,
                                           extra_body={"service_tier": "auto", "chat_template_kwargs": {"a": 1}})
    assert reply.choices[0].message.role == "assistant"
    assert client.models.retrieve(SERVED).id == SERVED
    assert client.models.retrieve("alpha").id == "alpha"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", {"model": SERVED, "messages": [{"role": "user", "content": "a\ud800b"}]}),
    ("/v1/completions", {"model": SERVED, "prompt": "\udfff"}),
    ("/v1/completions", {"model": SERVED, "prompt": "x", "stop": ["\ud800"]}),
    ("/chat", {"prompt": "a\ud800"}),
    ("/v1/completions", {"model": SERVED, "prompt": "x", "seed": 1 << 64}),
    ("/v1/completions", {"model": SERVED, "prompt": "x", "max_tokens": True}),
    ("/v1/chat/completions", {"model": SERVED, "messages": [{"role": "user"}]}),
    ("/chat", {"prompt": "x", "generate_kwargs": {"seed": 1 << 70}}),
])
def test_bad_input_is_a_4xx_naming_the_problem(server, path, body):
    reply = httpx.post(server.base_url + path, content=json.dumps(body).encode(),
                       headers={"content-type": "application/json"}, timeout=30)
    assert reply.status_code in (400, 422), reply.text
    message = reply.json().get("detail") or reply.json()["error"]["message"]
    assert any(word in message for word in ("UTF-8", "seed", "max_tokens", "content")), message
