"""Engine pieces: stop strings, streamed text, sampling, KV-cache batching, engine choice, vLLM mapping."""

from __future__ import annotations

import pytest

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.engines import plan_engine
from kaito.runtime.inference.engines.sampling import TextStream, compute_next_tokens, compute_stop
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
    stream = TextStream(CharTokenizer(), stops=("xy",))
    out = [stream.push(ord(c)) for c in "abx"]
    assert out == [("a", False), ("b", False), ("", False)]
    assert stream.push(ord("y")) == ("", True)
    stream = TextStream(CharTokenizer(), stops=("xy",))
    for c in "ax":
        stream.push(ord(c))
    assert stream.flush() == "x"


def test_sampling_greedy_banned_and_seeded():
    import torch

    logits = torch.tensor([[0.0, 5.0, 1.0], [0.0, 5.0, 1.0]])
    greedy = api.SamplingParams(temperature=0.0)
    assert compute_next_tokens(logits, [(greedy, [], None, ()), (greedy, [], None, (1,))]) == [1, 2]
    params = api.SamplingParams(temperature=1.0, seed=3)

    def draw():
        gen = torch.Generator().manual_seed(3)
        return [compute_next_tokens(torch.zeros(1, 50), [(params, [], gen, ())])[0] for _ in range(10)]

    assert draw() == draw()
    top1 = api.SamplingParams(temperature=1.0, top_k=1)
    assert compute_next_tokens(logits[:1], [(top1, [], None, ())]) == [1]
    nucleus = api.SamplingParams(temperature=1.0, top_p=0.5)
    assert compute_next_tokens(logits[:1], [(nucleus, [], None, ())]) == [1]
    penalised = api.SamplingParams(temperature=0.0, repetition_penalty=100.0)
    assert compute_next_tokens(logits[:1], [(penalised, [1], None, ())]) == [2]


def test_batching_matches_one_at_a_time(tiny_model):
    """Rows admitted at different steps decode exactly as they would alone."""
    import torch
    from transformers import AutoModelForCausalLM, DynamicCache

    from kaito.runtime.inference.engines import batching

    model = AutoModelForCausalLM.from_pretrained(tiny_model.path).eval()
    prompts = [[5, 17, 99, 240], [7, 8], [300, 301, 302, 303, 304, 305]]

    def alone(prompt, steps):
        ids = torch.tensor([prompt])
        return model.generate(ids, max_new_tokens=steps, do_sample=False, min_new_tokens=steps,
                              pad_token_id=0)[0, len(prompt):].tolist()

    def prefill(group):
        ids, mask, pos = batching.build_prefill_inputs(group, 0, "cpu")
        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
        return batching.BatchTensors(cache, mask, [len(p) for p in group]), out.logits[:, -1].argmax(-1).tolist()

    with torch.no_grad():
        batch, tokens = prefill(prompts[:2])
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
            batch = batching.BatchTensors(batch.cache, mask, [p + 1 for p in batch.positions])
            for row, token in zip(outputs, out.logits[:, -1].argmax(-1).tolist(), strict=True):
                row.append(token)
    assert finished == alone(prompts[0], 5)
    assert outputs[0] == alone(prompts[1], 7)
    assert outputs[1] == alone(prompts[2], 5)


def test_plan_engine():
    auto = build_settings([], env={})
    assert plan_engine(auto, vllm_installed=True, cuda_available=True) == "vllm"
    assert plan_engine(auto, vllm_installed=True, cuda_available=False) == "transformers"
    assert plan_engine(auto, vllm_installed=False, cuda_available=True) == "transformers"
    forced = build_settings(["--engine", "vllm"], env={})
    assert plan_engine(forced, vllm_installed=False, cuda_available=False) == "vllm"


def test_select_vllm_without_vllm_is_a_clear_error(monkeypatch):
    import importlib.util

    from kaito.runtime.inference.engines import EngineUnavailable, select_engine

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EngineUnavailable, match="vLLM is not installed"):
        select_engine(build_settings(["--engine", "vllm"], env={}))


def test_quantization_without_cuda_is_a_clear_error():
    import torch

    from kaito.runtime.inference.engines.loading import LoadError, build_quantization

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(LoadError, match="load-in-4bit needs a CUDA device"):
        build_quantization(build_settings(["--load-in-4bit"], env={}))
