"""The `scaledobject.kaito.sh/…` annotations (kaito-v0.12.md §3.5): parsed as keda-kaito-scaler v0.6
reads them, refused with the annotation and the field named where it would skip the set or
quietly substitute a value. Checked directly and through `admit` on an InferenceSet."""

from __future__ import annotations

import copy

import pytest

from kaito.api import autoscaling as a
from kaito.api.admission import admit
from tests.unit.api.fake_facts import FakeFacts
from tests.unit.api.test_inferenceset_rules import BASE

GAUGE = "[{name: 'vllm:num_requests_waiting', type: gauge, upthreshold: 10, downthreshold: 2}]"


def on(**extra: str) -> dict[str, str]:
    return {a.AUTO_PROVISION: "true", a.METRICS: GAUGE, a.MAX_REPLICAS: "5", **extra}


def test_a_full_policy_is_read_with_keda_kaito_scalers_defaults():
    metrics = ("- {name: 'vllm:num_requests_waiting', type: gauge, upthreshold: 10, downthreshold: 2.5}\n"
               "- {name: 'vllm:time_to_first_token_seconds', type: histogram, source: modelpod, upThreshold: 0.5, "
               "downthreshold: 0.1, metriccachewindow: 120}\n"
               "- {name: 'vllm:e2e_request_latency_seconds', type: histogram, upthreshold: 9, downthreshold: 1}")
    policy, problems = a.parse_autoscaling({**on(**{a.METRICS: metrics, a.MIN_REPLICAS: "2", a.COMBINE_POLICY: "and",
                                                    a.SCALE_DOWN_COOLDOWN: "30"})})
    assert problems == []
    assert (policy.min_replicas, policy.max_replicas, policy.combine_policy) == (2, 5, "AND")
    assert (policy.evaluation_window_s, policy.scale_up_cooldown_s, policy.scale_down_cooldown_s) == (60, 300, 30)
    gauge, hist, default_window = policy.metrics
    assert (gauge.variable, gauge.aggregation, gauge.cache_window_s, gauge.down_threshold) == (
        "vllm_num_requests_waiting", "service-avg", None, 2.5)
    assert (hist.aggregation, hist.cache_window_s, hist.up_threshold) == ("windowed-avg", 120, 0.5)
    assert default_window.cache_window_s == 300


def test_off_unless_exactly_true():
    assert a.parse_autoscaling({}) == (None, [])
    assert a.parse_autoscaling({a.AUTO_PROVISION: "false", a.METRICS: "nonsense: ["}) == (None, [])
    policy, problems = a.parse_autoscaling({a.AUTO_PROVISION: "True"})
    assert policy is None and [(p.path, p.severity) for p in problems] == [(a.path(a.AUTO_PROVISION), "warning")]


M = a.path(a.METRICS)
CASES = {
    # name: (annotations, the error paths, a phrase of the first error)
    "contradicting thresholds": (on(**{a.METRICS: "[{name: m, type: gauge, upthreshold: 2, downthreshold: 8}]"}),
                                 [f"{M}[0].downthreshold"], "is above upthreshold"),
    "max below min": (on(**{a.MIN_REPLICAS: "4", a.MAX_REPLICAS: "3"}), [a.path(a.MAX_REPLICAS)],
                      "max-replicas (3) is below min-replicas (4)"),
    "max of one": (on(**{a.MAX_REPLICAS: "1"}), [a.path(a.MAX_REPLICAS)], "at least 2"),
    "max not a number": (on(**{a.MAX_REPLICAS: "ten"}), [a.path(a.MAX_REPLICAS)], "not a whole number"),
    "min not a number": (on(**{a.MIN_REPLICAS: "1.5"}), [a.path(a.MIN_REPLICAS)], "not a whole number"),
    "no max and no node count limit": ({a.AUTO_PROVISION: "true", a.METRICS: GAUGE}, [a.path(a.MAX_REPLICAS)],
                                       "nodeCountLimit"),
    "metrics missing": ({a.AUTO_PROVISION: "true", a.MAX_REPLICAS: "3"}, [M], "needs this annotation"),
    "metrics not YAML": (on(**{a.METRICS: "[{name: m, type: gauge"}), [M], "not valid YAML"),
    "metrics not a list": (on(**{a.METRICS: "name: m"}), [M], "non-empty list"),
    "metrics empty": (on(**{a.METRICS: "[]"}), [M], "non-empty list"),
    "metric not a mapping": (on(**{a.METRICS: "[vllm:num_requests_waiting]"}), [f"{M}[0]"], "must be a mapping"),
    "metric without name": (on(**{a.METRICS: "[{type: gauge, upthreshold: 1, downthreshold: 0}]"}), [f"{M}[0].name"],
                            "name is required"),
    "unknown type": (on(**{a.METRICS: "[{name: m, type: counter, upthreshold: 1, downthreshold: 0}]"}),
                     [f"{M}[0].type"], "gauge or histogram"),
    "unknown source": (on(**{a.METRICS: "[{name: m, type: gauge, source: prometheus, upthreshold: 1, downthreshold: 0}]"}),
                       [f"{M}[0].source"], "modelpod"),
    "threshold missing": (on(**{a.METRICS: "[{name: m, type: gauge, upthreshold: 1}]"}), [f"{M}[0].downthreshold"],
                          "required"),
    "threshold a string": (on(**{a.METRICS: "[{name: m, type: gauge, upthreshold: '5', downthreshold: 1}]"}),
                           [f"{M}[0].upthreshold"], "finite number"),
    "threshold infinite": (on(**{a.METRICS: "[{name: m, type: gauge, upthreshold: .inf, downthreshold: 1}]"}),
                           [f"{M}[0].upthreshold"], "finite number"),
    "cache window on a gauge": (on(**{a.METRICS: "[{name: m, type: gauge, upthreshold: 2, downthreshold: 1, "
                                                 "metriccachewindow: 60}]"}), [f"{M}[0].metriccachewindow"], "histogram"),
    "cache window not positive": (on(**{a.METRICS: "[{name: m, type: histogram, upthreshold: 2, downthreshold: 1, "
                                                   "metriccachewindow: 0}]"}), [f"{M}[0].metriccachewindow"], "positive"),
    "two metrics, one variable": (on(**{a.METRICS: "[{name: 'a:b', type: gauge, upthreshold: 2, downthreshold: 1}, "
                                                   "{name: 'a-b', type: gauge, upthreshold: 2, downthreshold: 1}]"}),
                                  [f"{M}[1].name"], "rename one"),
    "combine policy OR": (on(**{a.COMBINE_POLICY: "OR"}), [a.path(a.COMBINE_POLICY)], "only AND"),
    "window not a number": (on(**{a.EVALUATION_WINDOW: "1m"}), [a.path(a.EVALUATION_WINDOW)], "not a whole number"),
    "cooldown negative": (on(**{a.SCALE_UP_COOLDOWN: "-5"}), [a.path(a.SCALE_UP_COOLDOWN)], "from 0"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_annotations_are_named(name):
    annotations, paths, phrase = CASES[name]
    policy, problems = a.parse_autoscaling(annotations)
    errors = [p for p in problems if p.severity == "error"]
    assert policy is None
    assert [e.path for e in errors] == paths, [str(p) for p in problems]
    assert phrase in errors[0].message


def test_node_count_limit_decides_the_maximum_as_the_scaler_does():
    policy, problems = a.parse_autoscaling({a.AUTO_PROVISION: "true", a.METRICS: GAUGE}, node_count_limit=8)
    assert problems == [] and policy.max_replicas is None  # nodeCountLimit ÷ a child's targetNodeCount, later
    policy, problems = a.parse_autoscaling(on(), node_count_limit=8)
    assert policy.max_replicas is None and [p.severity for p in problems] == ["warning"]  # the annotation is ignored
    _, problems = a.parse_autoscaling(on(**{a.MIN_REPLICAS: "4"}), node_count_limit=3)
    assert [(p.path, p.severity) for p in problems][-1] == ("spec.nodeCountLimit", "error")


def test_warnings_for_what_the_scaler_ignores():
    _, problems = a.parse_autoscaling({**on(**{a.MIN_REPLICAS: "0"}), f"{a.PREFIX}threshold": "10",
                                       f"{a.PREFIX}minreplicas": "2"})
    found = {p.path: p for p in problems}
    assert all(p.severity == "warning" for p in problems)
    assert "single-metric form" in found[a.path(f"{a.PREFIX}threshold")].message
    assert "unknown autoscaling annotation" in found[a.path(f"{a.PREFIX}minreplicas")].message
    assert "never scales an InferenceSet to zero" in found[a.path(a.MIN_REPLICAS)].message


def test_formula_variables_are_written_as_keda_kaito_scaler_writes_them():
    assert a.formula_variable("vllm:num_requests_waiting") == "vllm_num_requests_waiting"
    assert a.formula_variable("9lives.x") == "_9lives_x"
    assert [a.format_number(v) for v in (10.0, 0.5, 1e20, -3)] == ["10", "0.5", "100000000000000000000", "-3"]


def test_admission_refuses_bad_annotations_on_the_set():
    obj = copy.deepcopy(BASE)
    obj["metadata"]["annotations"] = on(**{a.METRICS: "[{name: m, type: gauge, upthreshold: 1, downthreshold: 3}]",
                                           a.MIN_REPLICAS: "3", a.MAX_REPLICAS: "2"})
    verdict = admit(obj, facts=FakeFacts())
    assert [e.path for e in verdict.errors] == [f"{M}[0].downthreshold", a.path(a.MAX_REPLICAS)]
    obj["metadata"]["annotations"] = on()
    assert admit(obj, facts=FakeFacts()).allowed
