"""Request models and their mapping to sampling: OpenAI and KAITO /chat."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from kaito.runtime.inference import protocol_kaito, protocol_openai
from kaito.runtime.inference.engine import InvalidRequest


def test_openai_sampling_mapping_and_extensions():
    body = protocol_openai.ChatCompletionRequest(
        model="m", messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text",
                                                                                          "text": "b"}]}],
        temperature=0.5, top_p=0.9, stop="END", seed=7, top_k=5, min_tokens=3, ignore_eos=True,
        max_completion_tokens=9)
    params = body.build_sampling(body.requested_max_tokens, choice=2)
    assert (params.max_tokens, params.temperature, params.top_p, params.top_k, params.seed, params.stop,
            params.min_tokens, params.ignore_eos) == (9, 0.5, 0.9, 5, 9, ("END",), 3, True)
    assert body.messages[0].build_template_message() == {"role": "user", "content": "ab"}


def test_openai_parameters_map_to_sampling():
    body = protocol_openai.ChatCompletionRequest(
        model="m", messages=[{"role": "user", "content": "x"}], presence_penalty=0.5, frequency_penalty=-1.0,
        logit_bias={"7": 500, "3": -5}, min_p=0.1, logprobs=True, top_logprobs=3,
        response_format={"type": "json_object"}, seed=-1)
    params = body.build_sampling(10, 0, logprobs=body.wanted_logprobs)
    assert (params.presence_penalty, params.frequency_penalty, params.min_p, params.logprobs, params.seed) == (
        0.5, -1.0, 0.1, 3, None)
    assert params.logit_bias == ((7, 100.0), (3, -5.0))  # clamped to [-100, 100], as vLLM
    assert params.json_schema == protocol_openai.JSON_OBJECT_SCHEMA
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = protocol_openai.CompletionRequest(prompt="x", response_format={
        "type": "json_schema", "json_schema": {"name": "s", "schema": schema}}, echo=True, logprobs=2)
    assert json.loads(body.build_sampling(4, 0).json_schema) == schema


@pytest.mark.parametrize("field,value", [("tools", [{"type": "function", "function": {"name": "f"}}]),
                                         ("suffix", "tail"), ("best_of", 3)])
def test_unsupported_openai_parameters_are_refused_by_name(field, value):
    with pytest.raises(ValidationError, match=field):
        protocol_openai.ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"}],
                                              **{field: value})


def test_unknown_fields_are_ignored_with_a_warning_once(caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="kaito.runtime.inference")
    body = protocol_openai.CompletionRequest(model="m", prompt="x", field_only_this_test_sends="auto")
    assert body.prompt == "x"
    [first] = [r for r in caplog.records if "field_only_this_test_sends" in r.getMessage()]
    assert first.levelno == logging.WARNING
    caplog.clear()
    protocol_openai.CompletionRequest(model="m", prompt="x", field_only_this_test_sends="again")
    assert [r.levelno for r in caplog.records if "field_only_this_test_sends" in r.getMessage()] == [logging.DEBUG]


@pytest.mark.parametrize("body,needle", [
    ({"prompt": "x", "max_tokens": True}, "max_tokens"),  # a boolean is not a number
    ({"prompt": "x", "temperature": True}, "temperature"),
    ({"prompt": "x", "seed": 1 << 63}, "seed"),
    ({"prompt": "x", "top_p": 0}, "top_p"),
    ({"prompt": "x", "min_p": 1.5}, "min_p"),
    ({"prompt": "x", "presence_penalty": 3}, "presence_penalty"),
    ({"prompt": "x", "temperature": float("nan")}, "temperature"),
    ({"prompt": "x", "logit_bias": {"abc": 1}}, "logit_bias"),
    ({"prompt": "x", "logprobs": 21}, "logprobs"),
    ({"prompt": "x", "stop": [""]}, "stop"),
    ({"prompt": "\ud800"}, "prompt"),  # valid JSON, not valid UTF-8
    ({"prompt": "x", "user": "a\udfffb"}, "user"),
])
def test_bad_completion_input_is_refused_naming_the_field(body, needle):
    with pytest.raises(ValidationError, match=needle):
        protocol_openai.CompletionRequest.model_validate(body)


def test_chat_messages_need_content_and_top_logprobs_need_logprobs():
    with pytest.raises(ValidationError, match="content"):
        protocol_openai.ChatCompletionRequest(model="m", messages=[{"role": "user"}])
    protocol_openai.ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"},
                                                               {"role": "assistant"}])
    with pytest.raises(ValidationError, match="top_logprobs"):
        protocol_openai.ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"}],
                                              top_logprobs=2)


def test_neutral_openai_values_are_accepted():
    protocol_openai.ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"}],
                                          logprobs=False, presence_penalty=0, response_format={"type": "text"},
                                          tool_choice="none", tools=[])


def test_bad_ranges_are_refused():
    with pytest.raises(ValidationError, match="temperature"):
        protocol_openai.CompletionRequest(model="m", prompt="x", temperature=3)


def test_completion_prompts():
    assert protocol_openai.CompletionRequest(model="m", prompt="x").build_prompts() == ["x"]
    assert protocol_openai.CompletionRequest(model="m", prompt=[1, 2]).build_prompts() == [[1, 2]]
    assert protocol_openai.CompletionRequest(model="m", prompt=["a", "b"]).build_prompts() == ["a", "b"]
    assert protocol_openai.CompletionRequest(model="m", prompt="x").requested_max_tokens == 16


def test_kaito_defaults_are_kaitos():
    params = protocol_kaito.build_kaito_sampling({}, prompt_tokens=20)
    assert (params.max_tokens, params.temperature, params.top_k, params.top_p) == (180, 1.0, 10, 1.0)


def test_kaito_kwargs_mapping():
    params = protocol_kaito.build_kaito_sampling(
        {"max_length": 50, "min_length": 30, "do_sample": False, "num_beams": 1, "early_stopping": True,
         "pad_token_id": 3, "stop_strings": "\n"}, prompt_tokens=10)
    assert (params.max_tokens, params.min_tokens, params.greedy, params.stop) == (40, 20, True, ("\n",))
    assert protocol_kaito.build_kaito_sampling({"max_new_tokens": 5}, 100).max_tokens == 5


@pytest.mark.parametrize("kwargs,needle", [({"num_beams": 3}, "num_beams"), ({"bogus": 1}, "bogus"),
                                           ({"max_length": 5}, "max_length"), ({"top_p": 0}, "top_p"),
                                           ({"temperature": "hot"}, "generate_kwargs")])
def test_kaito_bad_kwargs_name_the_key(kwargs, needle):
    with pytest.raises(InvalidRequest, match=needle):
        protocol_kaito.build_kaito_sampling(kwargs, prompt_tokens=10)


def test_kaito_result_shapes():
    assert protocol_kaito.build_kaito_result("text-generation", "p", "g", True) == {"Result": "pg"}
    assert protocol_kaito.build_kaito_result("text-generation", "p", "g", False) == {"Result": "g"}
    assert protocol_kaito.build_kaito_result("conversational", "p", "g", True) == {
        "Result": "{'role': 'assistant', 'content': 'g'}"}


@pytest.mark.parametrize("raw,greedy", [(False, True), (True, False), ("false", True), ("False", True),
                                        ("FALSE", True), ("true", False), ("True", False)])
def test_kaito_do_sample_accepts_booleans_and_their_strings(raw, greedy):
    params = protocol_kaito.build_kaito_sampling({"do_sample": raw}, prompt_tokens=10)
    assert params.greedy is greedy


@pytest.mark.parametrize("raw", ["no", "", "0", 0, 1, None, [True], {"x": 1}])
def test_kaito_do_sample_other_values_are_400_naming_the_key(raw):
    with pytest.raises(InvalidRequest, match=r"generate_kwargs\.do_sample"):
        protocol_kaito.build_kaito_sampling({"do_sample": raw}, prompt_tokens=10)


def test_kaito_ignore_eos_reads_strings_like_do_sample():
    assert protocol_kaito.build_kaito_sampling({"ignore_eos": "false"}, 10).ignore_eos is False
    assert protocol_kaito.build_kaito_sampling({"ignore_eos": "TRUE"}, 10).ignore_eos is True
    with pytest.raises(InvalidRequest, match=r"generate_kwargs\.ignore_eos"):
        protocol_kaito.build_kaito_sampling({"ignore_eos": "maybe"}, 10)


def test_kaito_numbers_accept_numeric_strings():
    params = protocol_kaito.build_kaito_sampling(
        {"max_new_tokens": "7", "top_k": "5", "temperature": "0.5", "top_p": "0.9", "seed": "3"}, 10)
    assert (params.max_tokens, params.top_k, params.temperature, params.top_p, params.seed) == (7, 5, 0.5, 0.9, 3)


@pytest.mark.parametrize("kwargs,key", [
    ({"seed": 1 << 64}, "seed"),
    ({"max_new_tokens": True}, "max_new_tokens"),  # a boolean is not a count
    ({"max_new_tokens": 5.5}, "max_new_tokens"),  # int() would silently truncate
    ({"top_k": "ten"}, "top_k"),
    ({"seed": [1]}, "seed"),
    ({"temperature": "nan"}, "temperature"),
    ({"repetition_penalty": float("inf")}, "repetition_penalty"),
    ({"temperature": False}, "temperature"),
    ({"stop_strings": 5}, "stop_strings"),
    ({"stop_strings": ["a", 1]}, "stop_strings"),
])
def test_kaito_bad_numbers_and_stops_name_the_key(kwargs, key):
    with pytest.raises(InvalidRequest, match=rf"generate_kwargs\.{key}"):
        protocol_kaito.build_kaito_sampling(kwargs, prompt_tokens=10)
