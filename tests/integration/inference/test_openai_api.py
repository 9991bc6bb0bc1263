"""The official `openai` client, sync and async, against the server over loopback HTTP."""

from __future__ import annotations

import openai
import pytest

from tests.integration.inference.conftest import SERVED

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}]


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture
def aclient(server):
    return openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)


def test_model_list_has_base_and_adapter(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == [SERVED, "alpha"]


def test_chat_completion_counts_and_finish_reason(client):
    reply = client.chat.completions.create(model=SERVED, messages=MESSAGES, max_tokens=7, temperature=0,
                                           extra_body={"ignore_eos": True})
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 7
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 7


def test_chat_greedy_is_deterministic_and_seeded_sampling_repeats(client):
    def ask(**kw):
        return client.chat.completions.create(model=SERVED, messages=MESSAGES, max_tokens=12,
                                              extra_body={"min_tokens": 12}, **kw).choices[0].message.content

    assert ask(temperature=0) == ask(temperature=0)
    assert ask(temperature=1.0, seed=42) == ask(temperature=1.0, seed=42)


def test_n_choices_and_max_completion_tokens(client):
    reply = client.chat.completions.create(model=SERVED, messages=MESSAGES, max_completion_tokens=5, n=3,
                                           seed=3, extra_body={"ignore_eos": True})
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert reply.usage.completion_tokens == 15


def test_chat_stream_matches_non_streamed_text(client):
    plain = client.chat.completions.create(model=SERVED, messages=MESSAGES, max_tokens=10, temperature=0,
                                           extra_body={"min_tokens": 10})
    stream = client.chat.completions.create(model=SERVED, messages=MESSAGES, max_tokens=10, temperature=0,
                                            extra_body={"min_tokens": 10}, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == plain.choices[0].message.content
    assert finishes == ["length"]
    assert chunks[-1].usage.completion_tokens == 10


def test_stop_string_ends_with_stop(client):
    full = client.completions.create(model=SERVED, prompt="hello world", max_tokens=12, temperature=0,
                                     extra_body={"min_tokens": 12}).choices[0].text
    stop = full[4:6]
    assert stop.strip(), "need a visible stop string"
    cut = client.completions.create(model=SERVED, prompt="hello world", max_tokens=12, temperature=0,
                                    stop=[stop], extra_body={"min_tokens": 12}).choices[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full[: full.index(stop)]


def test_completions_plain_and_streamed(client):
    reply = client.completions.create(model=SERVED, prompt=["the quick", "hello"], max_tokens=4,
                                      temperature=0, extra_body={"ignore_eos": True})
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.usage.completion_tokens == 8
    streamed = client.completions.create(model=SERVED, prompt="the quick", max_tokens=4, temperature=0,
                                         extra_body={"ignore_eos": True}, stream=True)
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks) == reply.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_async_client_chat_stream_completion_and_models(aclient):
    models = await aclient.models.list()
    assert SERVED in [m.id for m in models.data]
    reply = await aclient.chat.completions.create(model=SERVED, messages=MESSAGES, max_tokens=6,
                                                  extra_body={"ignore_eos": True})
    assert reply.usage.completion_tokens == 6
    stream = await aclient.chat.completions.create(model=SERVED, messages=MESSAGES, max_tokens=6,
                                                   stream=True, extra_body={"ignore_eos": True})
    finishes = [c.choices[0].finish_reason async for c in stream if c.choices]
    assert finishes[-1] == "length"
    completion = await aclient.completions.create(model=SERVED, prompt="hello", max_tokens=3,
                                                  extra_body={"ignore_eos": True})
    assert completion.usage.completion_tokens == 3


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="nope", messages=MESSAGES, max_tokens=2)
    assert "nope" in err.value.message


def test_unsupported_parameter_is_400_naming_it(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=SERVED, messages=MESSAGES, max_tokens=2,
                                       tools=[{"type": "function", "function": {"name": "f"}}])
    assert "tools" in err.value.message


def test_prompt_longer_than_context_is_400_naming_the_limit(client, server):
    limit = server.engine.model_info().max_model_len
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=SERVED, prompt=list(range(10, 10 + limit + 5)), max_tokens=2)
    assert str(limit) in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=SERVED, prompt="hello", max_tokens=limit)
    assert str(limit) in err.value.message


def test_token_ids_outside_the_vocabulary_are_400_and_harm_no_one(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=SERVED, prompt=[1, 10**6], max_tokens=2)
    assert "vocabulary" in err.value.message
    assert client.completions.create(model=SERVED, prompt="ok", max_tokens=2).usage.completion_tokens >= 1
