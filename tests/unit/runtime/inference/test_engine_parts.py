"""Engine pieces: stop strings, streamed text, sampling, KV-cache batching, engine choice, vLLM mapping."""

from __future__ import annotations

import dataclasses

import pytest

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.engine import EngineName
from kaito.runtime.inference.engines import AUTO_ORDER, ENGINES, EngineUnavailable, plan_engine, select_entry
from kaito.runtime.inference.engines.detokenize import TextStream, compute_stop
from kaito.runtime.inference.engines.sampling import RowSampler, choose_tokens
from kaito.runtime.inference.settings import build_settings


@pytest.mark.parametrize("text,stops,expected", [
    ("hello END more", ("END",), (6, True)),
    ("hello EN", ("END",), (6, False)),  # "EN" may still become END: hold it back
    ("hello", ("END",), (5, False)),
    ("a.b", (".", "b"), (1, True)),
    ("abc", (), (3, False)),
])
def test_compute_stop(text, stops, expected):
    assert compute_stop(text, stops) == expected


class CharTokenizer:
    """Token i is chr(i); 0 is a special token that decodes to nothing."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids if i)


def test_text_stream_never_emits_what_a_stop_cuts():
    stream = TextStream(tokenizer=CharTokenizer(), stops=("xy",))
    out = [stream.push(ord(c)) for c in "abx"]
    assert out == [("a", False), ("b", False), ("", False)]
    assert stream.push(ord("y")) == ("", True)
    stream = TextStream(tokenizer=CharTokenizer(), stops=("xy",))
    for c in "ax":
        stream.push(ord(c))
    assert stream.flush() == "x"


def _pick(logits, params, banned=(), generator=None, generated=()):
    row = RowSampler(params=params, prompt=(), generator=generator, generated=list(generated))
    [choice] = choose_tokens(logits, [row], [banned])
    assert not isinstance(choice, BaseException), choice
    return choice[0]


def test_sampling_greedy_banned_and_seeded():
    import torch

    logits = torch.tensor([[0.0, 5.0, 1.0], [0.0, 5.0, 1.0]])
    greedy = api.SamplingParams(temperature=0.0)
    rows = [RowSampler(params=greedy, prompt=()), RowSampler(params=greedy, prompt=())]
    assert [c[0] for c in choose_tokens(logits, rows, [(), (1,)])] == [1, 2]
    params = api.SamplingParams(temperature=1.0, seed=3)

    def draw():
        gen = torch.Generator().manual_seed(3)
        return [_pick(torch.zeros(1, 50), params, generator=gen) for _ in range(10)]

    assert draw() == draw()
    assert _pick(logits[:1], api.SamplingParams(temperature=1.0, top_k=1)) == 1
    assert _pick(logits[:1], api.SamplingParams(temperature=1.0, top_p=0.5)) == 1
    assert _pick(logits[:1], api.SamplingParams(temperature=1.0, min_p=0.9)) == 1
    penalised = api.SamplingParams(temperature=0.0, repetition_penalty=100.0)
    assert _pick(logits[:1], penalised, generated=[1]) == 2
    assert _pick(logits[:1], api.SamplingParams(temperature=0.0, logit_bias=((0, 100.0),))) == 0


@pytest.mark.parametrize("params", [
    api.SamplingParams(temperature=1e-30), api.SamplingParams(temperature=1e-3, top_p=1e-300),
    api.SamplingParams(temperature=1.0, repetition_penalty=1e-300),
    api.SamplingParams(temperature=2.0, repetition_penalty=1e-30, presence_penalty=-2.0, frequency_penalty=-2.0),
    api.SamplingParams(temperature=1.0, logit_bias=((0, -100.0), (1, -100.0), (2, -100.0))),
    api.SamplingParams(temperature=1.0, seed=-(1 << 63)), api.SamplingParams(temperature=1.0, seed=(1 << 63) - 1),
])
def test_extreme_but_valid_sampling_never_fails(params):
    """What made a decode step fail before: tiny temperatures/top_p/penalties, int64 seeds."""
    import torch

    from kaito.runtime.inference.engines.sampling import build_generator

    logits = torch.tensor([[1e3, -1e3, 3.0]])
    token = _pick(logits, params, generator=build_generator(params, "cpu"), generated=[0, 2])
    assert token in (0, 1, 2)


def test_a_row_that_raises_fails_alone():
    import torch

    class Broken:
        def mask(self, row):
            raise RuntimeError("boom")

    good = RowSampler(params=api.SamplingParams(temperature=0.0), prompt=())
    bad = RowSampler(params=api.SamplingParams(temperature=0.0), prompt=(), grammar=Broken())
    choices = choose_tokens(torch.tensor([[0.0, 2.0], [0.0, 2.0]]), [bad, good], [(), ()])
    assert isinstance(choices[0], RuntimeError) and choices[1][0] == 1


def test_logprobs_are_the_models_log_softmax():
    import torch

    logits = torch.tensor([[1.0, 2.0, 3.0]])
    row = RowSampler(params=api.SamplingParams(temperature=0.0, logprobs=2), prompt=())
    [(token, logprob)] = choose_tokens(logits, [row], [()])
    expected = torch.log_softmax(logits[0], -1)
    assert token == 2 and logprob.logprob == pytest.approx(float(expected[2]))
    assert [t for t, _ in logprob.top] == [2, 1]


@pytest.mark.parametrize("backend", [True, False], ids=["decode-stream", "windows"])
def test_text_stream_decodes_incrementally_as_a_full_decode_would(tiny_model, backend):
    import random

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model.path)

    class WithoutBackend:  # a tokenizer with no Rust backend: decoded in windows
        decode = tokenizer.decode

    rng = random.Random(5)
    for length in (1, 7, 80):
        ids = [rng.randrange(3, len(tokenizer)) for _ in range(length)]
        stream = TextStream(tokenizer=tokenizer if backend else WithoutBackend())
        assert (stream._stream is not None) == backend
        text = "".join(stream.push(t)[0] for t in ids) + stream.flush()
        assert text == tokenizer.decode(ids, skip_special_tokens=True)
    incomplete = tokenizer("é", add_special_tokens=False).input_ids
    stream = TextStream(tokenizer=tokenizer if backend else WithoutBackend())
    assert "".join(stream.push(t)[0] for t in incomplete) + stream.flush() == "é"


def test_batching_matches_one_at_a_time(tiny_model):
    """Rows admitted at different steps decode exactly as they would alone."""
    import torch
    from transformers import AutoModelForCausalLM

    from kaito.runtime.inference.engines import batching

    model = AutoModelForCausalLM.from_pretrained(tiny_model.path).eval()
    prompts = [[5, 17, 99, 240], [7, 8], [300, 301, 302, 303, 304, 305]]

    def alone(prompt, steps):
        ids = torch.tensor([prompt])
        return model.generate(ids, max_new_tokens=steps, do_sample=False, min_new_tokens=steps,
                              pad_token_id=0)[0, len(prompt):].tolist()

    def prefill(group):
        ids, mask, pos = batching.build_prefill_inputs(group, 0, "cpu")
        cache = batching.build_cache(model.config)  # growing layers, as the engine uses
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
        return batching.BatchTensors(cache=cache, attention_mask=mask, positions=[len(p) for p in group]), out.logits[:, -1].argmax(-1).tolist()

    with torch.no_grad():
        batch, tokens = prefill(prompts[:2])
        assert type(batch.cache.layers[0]).__name__ == "GrowingLayer"
        outputs = [[t] for t in tokens]
        for step in range(6):
            if step == 2:  # admit the third prompt mid-flight
                new, first = prefill(prompts[2:])
                batch = batching.merge_batches(batch, new)
                outputs.append(first)
            if step == 4:  # the first row leaves
                batch = batching.select_rows(batch, [1, 2])
                finished, outputs = outputs[0], outputs[1:]
            ids, mask, pos = batching.build_decode_inputs(batch, [o[-1] for o in outputs])
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=batch.cache, use_cache=True)
            batch = dataclasses.replace(batch, attention_mask=mask, positions=[p + 1 for p in batch.positions])
            for row, token in zip(outputs, out.logits[:, -1].argmax(-1).tolist(), strict=True):
                row.append(token)
    assert finished == alone(prompts[0], 5)
    assert outputs[0] == alone(prompts[1], 7)
    assert outputs[1] == alone(prompts[2], 5)


def test_plan_engine_from_the_table():
    vllm_runs = {EngineName.VLLM: None, EngineName.TRANSFORMERS: None}
    no_gpu = {EngineName.VLLM: "no CUDA GPU", EngineName.TRANSFORMERS: None}
    assert plan_engine("auto", vllm_runs) == EngineName.VLLM
    assert plan_engine("auto", no_gpu) == EngineName.TRANSFORMERS
    assert plan_engine("transformers", vllm_runs) == EngineName.TRANSFORMERS
    with pytest.raises(EngineUnavailable, match="no CUDA GPU"):
        plan_engine("vllm", no_gpu)
    assert set(ENGINES) == set(EngineName) and set(AUTO_ORDER) == set(EngineName)
    assert all(entry.name == name for name, entry in ENGINES.items())


def test_select_vllm_without_vllm_is_a_clear_error(monkeypatch):
    import importlib.util

    from kaito.runtime.inference.engines import select_engine

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EngineUnavailable, match="vLLM is not installed"):
        select_engine(build_settings(["--engine", "vllm"], env={}))
    # auto falls back to transformers, probing nothing beyond what it needs
    assert select_entry(build_settings([], env={})).name == EngineName.TRANSFORMERS


def test_an_engine_that_serves_its_own_app_gets_the_process(monkeypatch):
    """A table entry with `serve` (vLLM's own OpenAI server) is handed the whole process."""
    from kaito.runtime.inference import __main__ as entrypoint
    from kaito.runtime.inference import engines

    served = []
    entry = engines.EngineEntry(name=EngineName.VLLM, unavailable=lambda settings: None,
                                serve=lambda argv: served.append(list(argv)) or 7)
    monkeypatch.setitem(engines.ENGINES, EngineName.VLLM, entry)
    # the whole command line, vLLM's own flags (which our settings would refuse) included
    argv = ["--engine", "vllm", "--model", "org/m", "--lora-modules", "a=/x", "b=/y", "--max-model-len=auto"]
    assert entrypoint.main(argv) == 7
    assert served == [argv]
    with pytest.raises(EngineUnavailable, match="own HTTP app"):
        engines.select_engine(build_settings(["--engine", "vllm"], env={}))
    with pytest.raises(ValueError, match="exactly one"):
        engines.EngineEntry(name=EngineName.VLLM, unavailable=lambda settings: None)


def test_prefill_budget_counts_padded_rows():
    from kaito.runtime.inference.engines.batching import fits_prefill_budget

    assert fits_prefill_budget([5, 5], 10) and not fits_prefill_budget([5, 5, 5], 14)
    assert not fits_prefill_budget([2, 9], 17)  # the short row is padded to the long one
    assert fits_prefill_budget([30], 30)


def test_a_prompt_prefilled_in_chunks_gives_the_logits_of_one_pass(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    from kaito.runtime.inference.engines import batching

    model = AutoModelForCausalLM.from_pretrained(tiny_model.path).eval()
    prompt = [(7 * i) % 200 + 3 for i in range(37)]
    with torch.no_grad():
        ids, mask, pos = batching.build_prefill_inputs([prompt], 0, "cpu")
        whole = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                      cache=batching.build_cache(model.config)).logits[0, -1]
        cache = batching.build_cache(model.config)
        for start in range(0, len(prompt), 8):
            ids, mask, pos = batching.build_chunk_inputs(prompt, start, min(start + 8, len(prompt)), "cpu")
            assert mask.shape == (1, min(start + 8, len(prompt))) and pos[0, 0].item() == start
            out = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
        assert cache.get_seq_length() == len(prompt)
        assert torch.allclose(out.logits[0, -1], whole, atol=1e-4)


def test_request_limits_name_what_is_wrong():
    from kaito.runtime.inference.engines.limits import GrammarCache, ModelFacts, check_request

    facts = ModelFacts(adapters=("alpha",), max_model_len=32, vocab=100, eos=(2,))

    def check(prompt=(5, 6), adapter=None, **params):
        check_request(api.GenerationRequest(request_id="r", prompt_token_ids=prompt, adapter=adapter,
                                            params=api.SamplingParams(**params)), facts, GrammarCache())

    check(adapter="alpha", max_tokens=30)
    for call, error, needle in [
        (lambda: check(adapter="beta"), api.UnknownModel, "beta"),
        (lambda: check(max_tokens=31), api.ContextTooLong, "33"),
        (lambda: check(prompt=()), api.InvalidRequest, "empty"),
        (lambda: check(prompt=(100,)), api.InvalidRequest, "0..99"),
        (lambda: check(logit_bias=((-1, 1.0),)), api.InvalidRequest, "logit_bias"),
        (lambda: check(json_schema="{"), api.InvalidRequest, "response_format"),
    ]:
        with pytest.raises(error, match=needle):
            call()


def test_engine_stats_compare_the_load_not_the_counters():
    assert api.EngineStats(prefills=3, prefilled_rows=12, aborted=1) == api.EngineStats()
    assert api.EngineStats(running=1) != api.EngineStats()
    assert api.EngineStats(prefills=3, prefilled_rows=12).mean_prefill_batch == 4.0
    assert api.EngineStats().mean_prefill_batch == 0.0


@pytest.mark.parametrize("engine_class", ["engines.transformers_engine.TransformersEngine",
                                          "engines.engine_process.ProcessEngine",
                                          "vllm_engine.VllmEngine"])  # vLLM's, behind our /chat on its server
def test_every_engine_has_every_member_of_the_protocol(engine_class):
    import importlib

    module, cls = engine_class.rsplit(".", 1)
    engine_type = getattr(importlib.import_module(f"kaito.runtime.inference.{module}"), cls)
    members = {n for n in vars(api.EngineClient) if not n.startswith("_")}
    assert members >= {"name", "load_state", "stats", "observe_steps", "generate", "check"}
    assert {n for n in members if not hasattr(engine_type, n)} == set()


def test_quantization_without_cuda_is_a_clear_error():
    import torch

    from kaito.runtime.inference.engines.loading import LoadError, build_quantization

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(LoadError, match="load-in-4bit needs a CUDA device"):
        build_quantization(build_settings(["--load-in-4bit"], env={}))
