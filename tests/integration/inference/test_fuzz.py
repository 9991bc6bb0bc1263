"""Fuzzing the generation routes (chat, completions, KAITO's /chat) with hypothesis, over real HTTP.

Bodies mix valid values, edge values (tiny temperatures, int64 seeds, empty and unencodable text)
and wrong types, with small token limits. Whatever comes in: never a 5xx, and a streamed answer is
either an HTTP error before the stream or a well-formed stream of JSON events ending in `[DONE]`.
Derandomized so CI runs the same examples each time; bounded to stay well under a minute.
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.inference.conftest import SERVED

NASTY_TEXT = ["", " ", "hello", "\ud800", "a\udfffb", "\x00", "😀" * 3, "<|end|>", "{{ raise }}", "\\u0000"]
nasty_text = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=12))
good_text = st.one_of(st.sampled_from(["hello", "the quick brown fox", "😀 ünïcode", "<|end|>", " "]),
                      st.text(st.characters(codec="utf-8"), min_size=1, max_size=16))
number = st.one_of(
    st.sampled_from([0, 1, -1, 1e-30, 1e-300, 1e-5, 0.5, 2, 2.0000001, 1e30, -0.0, (1 << 63) - 1, 1 << 63,
                     -(1 << 63), 1 << 64]),
    st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-(1 << 70), 1 << 70))
anything = st.one_of(st.none(), st.booleans(), number, nasty_text, st.lists(st.integers(-2, 1200), max_size=4),
                     st.dictionaries(st.sampled_from(["1", "5", "x", "-3", "99999"]), number, max_size=2))
tiny = st.sampled_from([1e-30, 1e-10, 1e-5, 1e-3])

# valid but extreme values: what the server must take without a 5xx and without failing a step
SAMPLING = {
    "temperature": st.one_of(tiny, st.floats(0, 2)), "top_p": st.one_of(tiny, st.floats(1e-9, 1)),
    "top_k": st.integers(-1, 2000), "min_p": st.floats(0, 1), "repetition_penalty": st.one_of(tiny, st.floats(0.01, 5)),
    "presence_penalty": st.floats(-2, 2), "frequency_penalty": st.floats(-2, 2),
    "seed": st.integers(-(1 << 63), (1 << 63) - 1), "n": st.integers(1, 2), "stop": st.one_of(
        good_text, st.lists(good_text, max_size=3)),
    "logit_bias": st.dictionaries(st.integers(0, 999).map(str), st.floats(-1000, 1000), max_size=3),
    "min_tokens": st.integers(0, 6), "ignore_eos": st.booleans(),
    "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}, {"type": "json_schema",
                                        "json_schema": {"name": "s", "schema": {"type": "array"}}}]),
    "user": good_text, "service_tier": good_text, "max_tokens": st.integers(1, 4),
}


def bodies(required: dict, extra: dict) -> st.SearchStrategy[dict]:
    """Mostly valid bodies (extreme values included); half of them with one field replaced by junk."""
    fields = {**SAMPLING, **extra}
    valid = st.fixed_dictionaries(required, optional=fields)
    junk = st.dictionaries(st.sampled_from(sorted({*fields, *required, "stream_options", "bogus"})), anything,
                           max_size=1)
    return st.builds(lambda body, broken, stream: {"max_tokens": 3, **body, "stream": stream, **broken},
                     valid, st.one_of(st.just({}), junk), st.booleans())


message = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "user"]), "content": good_text})
CHAT = bodies({"model": st.sampled_from([SERVED, SERVED, "alpha"]), "messages": st.lists(message, min_size=1, max_size=3)},
              {"logprobs": st.booleans(), "top_logprobs": st.integers(0, 5)})
COMPLETION = bodies({"model": st.sampled_from([SERVED, "alpha"]),
                     "prompt": st.one_of(good_text, st.lists(st.integers(0, 999), min_size=1, max_size=6),
                                         st.lists(good_text, min_size=1, max_size=2))},
                    {"echo": st.booleans(), "logprobs": st.integers(0, 5)})
kaito_kwargs = st.fixed_dictionaries({"max_new_tokens": st.integers(1, 4)}, optional={
    "do_sample": st.booleans(), "temperature": st.one_of(tiny, st.floats(0.01, 2)), "top_k": st.integers(0, 50),
    "top_p": st.one_of(tiny, st.floats(1e-9, 1)), "min_p": st.floats(0, 1), "seed": st.integers(-(1 << 63), 1 << 62),
    "repetition_penalty": st.one_of(tiny, st.floats(0.01, 5)), "stop_strings": good_text,
    "min_new_tokens": st.integers(0, 3)})
KAITO = st.builds(lambda body, broken: {**body, **broken},
                  st.fixed_dictionaries({"prompt": good_text, "generate_kwargs": kaito_kwargs},
                                        optional={"return_full_text": st.booleans(), "prefix": good_text}),
                  st.one_of(st.just({}), st.dictionaries(st.sampled_from(
                      ["prompt", "generate_kwargs", "prefix", "messages", "return_full_text"]), anything, max_size=1)))

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def post_and_check(base_url: str, path: str, body: dict) -> None:
    raw = json.dumps(body).encode()  # ASCII: lone surrogates travel as \\u escapes, as a client may send them
    with httpx.stream("POST", base_url + path, content=raw, headers={"content-type": "application/json"},
                      timeout=60) as reply:
        assert reply.status_code < 500, (reply.status_code, reply.read(), body)
        if reply.headers.get("content-type", "").startswith("text/event-stream"):
            events = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
            assert events and events[-1] == "[DONE]", (events, body)
            for event in events[:-1]:
                assert "error" not in json.loads(event), (event, body)
        else:
            reply.read()
            json.loads(reply.text)


@pytest.mark.slow
@FUZZ
@given(body=CHAT)
def test_fuzz_chat_completions(server, body):
    post_and_check(server.base_url, "/v1/chat/completions", body)


@pytest.mark.slow
@FUZZ
@given(body=COMPLETION)
def test_fuzz_completions(server, body):
    post_and_check(server.base_url, "/v1/completions", body)


@pytest.mark.slow
@FUZZ
@given(body=KAITO)
def test_fuzz_kaito_chat(server, body):
    post_and_check(server.base_url, "/chat", body)
