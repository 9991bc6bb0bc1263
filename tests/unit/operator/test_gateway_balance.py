"""The gateway's placement rules and ejection book (`kaito.operator.serving.balance`), and the
autoscaler's reading of Prometheus text (`scrape.parse_sample`), as tables."""

from __future__ import annotations

import json

import pytest

from kaito.operator.serving import balance
from kaito.operator.serving.policy import MetricRule
from kaito.operator.serving.scrape import parse_sample


def body(doc) -> bytes:
    return json.dumps(doc).encode()


SYSTEM = "You are a helpful assistant. " * 20  # 580 characters: longer than the prefix


@pytest.mark.parametrize(("doc", "key"), [
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "m\x00user: hi"),
    ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                               {"type": "image_url", "image_url": {"url": "u"}}]}]},
     "m\x00user: a u"),
    ({"model": "m", "prompt": "once upon"}, "m\x00once upon"),
    ({"model": "m", "prompt": ["first", "second"]}, "m\x00first"),
    ({"model": "m", "prompt": [1, 2, 3]}, "m\x001 2 3"),
    ({"prompt": "kaito /chat"}, "\x00kaito /chat"),
    ({"model": "m"}, None),
    ({"model": "m", "messages": []}, None),
    ([1, 2], None),
])
def test_prefix_key(doc, key) -> None:
    assert balance.prefix_key(body(doc)) == key


def test_prefix_key_cuts_at_prefix_chars_and_ignores_what_is_not_json() -> None:
    a = body({"model": "m", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "one"}]})
    b = body({"model": "m", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "two"}]})
    assert balance.prefix_key(a) == balance.prefix_key(b)
    assert len(balance.prefix_key(a)) == len("m\x00") + balance.DEFAULT_PREFIX_CHARS
    assert balance.prefix_key(a, prefix_chars=10_000) != balance.prefix_key(b, prefix_chars=10_000)
    assert balance.prefix_key(b"not json") is None and balance.prefix_key(b"") is None
    assert balance.prefix_key(a, prefix_chars=0) is None


def test_rendezvous_order_moves_only_the_keys_of_a_replica_that_left() -> None:
    names = ["a", "b", "c", "d"]
    keys = [f"k{i}" for i in range(200)]
    before = {k: balance.rendezvous_order(k, names)[0] for k in keys}
    after = {k: balance.rendezvous_order(k, ["a", "b", "d"])[0] for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == "c"}
    assert len(set(before.values())) == 4  # every replica is someone's first choice


@pytest.mark.parametrize(("outstanding", "key", "turn", "expect"), [
    # no key: the fewest outstanding; ties round robin by turn, in name order
    ({"a": 2, "b": 1, "c": 3}, None, 0, ("b", False)),
    ({"a": 1, "b": 1, "c": 3}, None, 0, ("a", False)),
    ({"a": 1, "b": 1, "c": 3}, None, 1, ("b", False)),
    # a key: its first replica while under the cap ceil(1.25 × (total + 1) / n)
    ({"a": 0, "b": 0, "c": 0}, "K", 0, ("FIRST", True)),
    ({"a": 1, "b": 1, "c": 1}, "K", 0, ("FIRST", True)),  # cap ceil(1.25 × 4 / 3) = 2
])
def test_pick(outstanding, key, turn, expect) -> None:
    got = balance.pick(["a", "b", "c"], outstanding, key, turn=turn)
    first = balance.rendezvous_order("K", ["a", "b", "c"])[0]
    assert (got.name, got.affinity) == ((first if expect[0] == "FIRST" else expect[0]), expect[1])


def test_a_hot_prefix_spills_to_its_second_choice_at_the_cap() -> None:
    names = ["a", "b"]
    first, second = balance.rendezvous_order("K", names)
    load = {first: 0, second: 0}
    placed = []
    for _ in range(8):  # eight concurrent requests with one prefix, none finishing
        choice = balance.pick(names, load, "K")
        load[choice.name] += 1
        placed.append(choice.name)
    assert placed[:2] == [first, first] and second in placed
    assert load[first] == 5 and load[second] == 3  # ceil(1.25 × 8 / 2) = 5: never above the cap
    assert balance.load_cap(7, 2) == 5 and balance.pick([], {}, "K") is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_ejection_backs_off_and_success_clears_it() -> None:
    clock = Clock()
    book = balance.Ejections(base_s=2, max_s=5, clock=clock)
    assert book.fail("a") is True and book.is_ejected("a")
    assert book.fail("a") is False  # a request already in flight failing too: no longer ejection
    clock.now = 1.9
    assert book.is_ejected("a")
    clock.now = 2.0
    assert not book.is_ejected("a")
    book.fail("a")  # failed again after coming back: 4 s
    clock.now = 5.9
    assert book.is_ejected("a")
    clock.now = 6.0
    book.fail("a")  # 8 s, capped at 5
    clock.now = 10.9
    assert book.is_ejected("a")
    clock.now = 11.0
    book.succeed("a")
    book.fail("a")  # back to the base after a success
    clock.now = 13.0
    assert not book.is_ejected("a")


def test_every_candidate_ejected_means_all_are_used() -> None:
    book = balance.Ejections(clock=Clock())
    book.fail("a")
    assert book.usable(["a", "b"]) == ["b"]
    book.fail("b")
    assert book.usable(["a", "b"]) == ["a", "b"]
    book.forget_others(["b"])
    assert book.usable(["a", "b"]) == ["a"]


METRICS_TEXT = """\
# HELP vllm:num_requests_waiting Requests waiting
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="set"} 3.0
vllm:num_requests_waiting{model_name="adapter"} 2.0
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="1.0",model_name="set"} 2.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="set"} 4.0
vllm:e2e_request_latency_seconds_sum{model_name="set"} 6.5
vllm:e2e_request_latency_seconds_count{model_name="set"} 4.0
"""


def test_parse_sample_sums_label_sets() -> None:
    rules = [MetricRule(up_threshold=1, down_threshold=0),
             MetricRule(name="vllm:e2e_request_latency_seconds", kind="histogram", up_threshold=1, down_threshold=0),
             MetricRule(name="vllm:num_requests_running", up_threshold=1, down_threshold=0)]
    sample = parse_sample(METRICS_TEXT, rules)
    assert sample.gauges == {"vllm:num_requests_waiting": 5.0}  # absent metrics are absent, not 0
    assert sample.histograms == {"vllm:e2e_request_latency_seconds": (6.5, 4.0)}
