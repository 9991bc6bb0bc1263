"""Bounds at admission: every list, number and string a user controls has a ceiling, on CREATE and
UPDATE, through the one entry point (`kaito.api.admission.admit`); the controller and the builders
never make more nodes or replicas than admission allows, even for an object stored past it."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from kaito.api.admission import admit
from kaito.api.validation import bounds
from kaito.catalog import presets, skus
from kaito.catalog.facts import build_catalog_facts
from kaito.controller import plan as plan_mod
from kaito.controller.observe import Observed, WorkspaceKey
from kaito.controller.settings import Settings
from tests.unit.api.factories import INFERENCE, TUNING, _apply

FACTS = build_catalog_facts("azure")
BASE = _apply(INFERENCE, {"inference.preset.name": "falcon-7b", "resource.instanceType": "Standard_NC24ads_A100_v4"})
TUNE = _apply(TUNING, {"tuning.preset.name": "falcon-7b"})
LONG = "a" * 300

CASES = [
    # (id, base, overrides, field path, phrase)
    ("count-bomb", BASE, {"resource.count": 1_000_000}, "resource.count", "at most 100"),
    ("count-just-over", BASE, {"resource.count": bounds.MAX_NODE_COUNT + 1}, "resource.count", "at most"),
    ("preferred-nodes", BASE, {"resource.preferredNodes": [f"n{i}" for i in range(101)]},
     "resource.preferredNodes", "101 preferred nodes"),
    ("preferred-node-name", BASE, {"resource.preferredNodes": [LONG]}, "resource.preferredNodes[0]", "300 characters"),
    ("selector-terms", BASE, {"resource.labelSelector.matchLabels": {f"k{i}": "v" for i in range(33)}},
     "resource.labelSelector", "33 selector terms"),
    ("selector-value", BASE, {"resource.labelSelector.matchLabels": {"apps": "x" * 64}},
     "resource.labelSelector.matchLabels[apps]", "at most 63"),
    ("selector-key", BASE, {"resource.labelSelector.matchLabels": {"bad key": "v"}},
     "resource.labelSelector.matchLabels[bad key]", "key"),
    ("expression-values", BASE, {"resource.labelSelector.matchExpressions": [
        {"key": "apps", "operator": "In", "values": [str(i) for i in range(33)]}]},
     "resource.labelSelector.matchExpressions[0].values", "33 values"),
    ("instance-type", BASE, {"resource.instanceType": "Standard_" + "N" * 80}, "resource.instanceType", "at most 63"),
    ("labels-count", BASE, {"metadata.labels": {f"l{i}": "v" for i in range(65)}}, "metadata.labels", "65 labels"),
    ("label-value", BASE, {"metadata.labels": {"team": "v" * 64}}, "metadata.labels[team]", "at most 63"),
    ("annotations-size", BASE, {"metadata.annotations": {"note": "x" * (256 * 1024)}}, "metadata.annotations",
     "at most 262144"),
    ("preset-name", BASE, {"inference.preset.name": LONG}, "inference.preset.name", "300 characters"),
    ("pull-secrets", BASE, {"inference.preset.presetOptions": {"imagePullSecrets": [f"s{i}" for i in range(17)]}},
     "inference.preset.presetOptions.imagePullSecrets", "17 secrets"),
    ("image", BASE, {"inference.preset.accessMode": "private",
                     "inference.preset.presetOptions": {"image": "r.io/" + "a" * 1100 + ":1"}},
     "inference.preset.presetOptions.image", "at most 1024"),
    ("template-size", _apply(BASE, {"inference.preset": None}),
     {"inference.template": {"spec": {"containers": [{"name": "c", "image": "x", "args": ["y" * 600_000]}]}}},
     "inference.template", "bytes of JSON"),
    ("adapters", BASE, {"inference.adapters": [{"source": {"name": f"a{i}", "image": "r.io/a/b:1"}}
                                               for i in range(11)]}, "inference.adapters", "maximum of 10"),
    ("urls", TUNE, {"tuning.input.urls": [f"https://example.com/{i}.parquet" for i in range(65)]},
     "tuning.input.urls", "65 URLs"),
    ("url-length", TUNE, {"tuning.input.urls": ["https://example.com/" + "a" * 2100]}, "tuning.input.urls[0]",
     "at most 2048"),
    ("tuning-config-name", TUNE, {"tuning.config": LONG}, "tuning.config", "300 characters"),
    ("push-secret", TUNE, {"tuning.output.imagePushSecret": LONG}, "tuning.output.imagePushSecret", "300"),
]


def _errors(obj, old=None, version="kaito.sh/v1alpha1"):
    obj = {**obj, "apiVersion": version}
    if old is not None:
        old = {**old, "apiVersion": version}
    return admit(obj, old, facts=FACTS).errors


@pytest.mark.parametrize(("base", "overrides", "path", "phrase"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("version", ["kaito.sh/v1alpha1", "kaito.sh/v1beta1"])
def test_each_bound_is_refused_on_create_with_its_field(base, overrides, path, phrase, version):
    doc = _apply(base, overrides)
    if overrides.get("inference.preset", 0) is None:
        doc["inference"].pop("preset")
    errors = _errors(doc, version=version)
    assert any(e.path == path and phrase in e.message for e in errors), errors


MUTABLE = [c for c in CASES if c[0] in ("urls", "adapters", "labels-count", "annotations-size")]


@pytest.mark.parametrize(("base", "overrides", "path", "phrase"), [c[1:] for c in MUTABLE], ids=[c[0] for c in MUTABLE])
def test_a_mutable_list_cannot_grow_past_its_bound_on_update(base, overrides, path, phrase):
    errors = _errors(_apply(base, overrides), old=base)
    assert any(e.path == path and phrase in e.message for e in errors), errors


def test_the_count_bomb_is_answered_by_its_bound_alone():
    """Nothing sized by the input runs past a bound: the bound is the whole answer."""
    errors = _errors(_apply(BASE, {"resource.count": 10**18}))
    assert [e.path for e in errors] == ["resource.count"]


def test_a_valid_workspace_keeps_every_bound():
    assert _errors(BASE) == [] and _errors(TUNE) == []
    at_bounds = _apply(BASE, {"resource.count": bounds.MAX_NODE_COUNT,
                              "metadata.labels": {f"l{i}": "v" * 63 for i in range(bounds.MAX_LABELS)}})
    assert not [e for e in _errors(at_bounds) if e.path.startswith("metadata.labels") or "at most" in e.message]


def test_the_node_bound_holds_the_largest_catalog_model_on_the_smallest_sku():
    """The README's reasoning, checked: the biggest weights over the smallest GPU node fit in the bound."""
    largest = max(p.model_size_gib for p in presets.all_presets())
    smallest = min(g.gpu_memory_gib for cloud in skus.CLOUDS for s in skus.supported_skus(cloud)
                   if (g := skus.lookup_sku(s, cloud)) is not None and g.gpu_memory_gib >= 16)
    assert math.ceil(largest / smallest) <= bounds.MAX_NODE_COUNT


def test_the_controller_builds_no_more_than_the_bound_for_an_object_stored_past_admission():
    raw = {**BASE, "metadata": {"name": "ws", "namespace": "default", "uid": "u1", "generation": 1},
           "resource": {**BASE["resource"], "count": 1_000_000}}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    p = plan_mod.plan_workspace(Observed(key=WorkspaceKey("default", "ws"), workspace=raw), Settings(), now)
    assert p.nodeclaims == ()  # the re-check refuses it: a condition, no node
    assert "at most 100" in str(p.status)


def test_builders_cap_nodes_and_replicas_even_when_asked_for_more():
    from kaito.api.conversion import parse_workspace
    from kaito.manifests.workspace import RenderSettings, build_workspace_objects

    # On transformers the controller builds resource.count nodes: capped.
    asked = _apply(BASE, {"resource.count": 100_000, "metadata.annotations": {"kaito.sh/runtime": "transformers"}})
    ws, _ = parse_workspace(asked)
    objects = build_workspace_objects(ws, RenderSettings())
    assert sum(o["kind"] == "NodeClaim" for o in objects) == bounds.MAX_NODE_COUNT
    assert all(o["spec"]["replicas"] <= bounds.MAX_NODE_COUNT for o in objects if "replicas" in o.get("spec", {}))
    assert bounds.compute_node_count(ws.resource) == bounds.MAX_NODE_COUNT
    # On vLLM (KAITO v0.12) the estimator's count is built, never resource.count's.
    ws, _ = parse_workspace(_apply(BASE, {"resource.count": 100_000}))
    claims = sum(o["kind"] == "NodeClaim" for o in build_workspace_objects(ws, RenderSettings()))
    assert 1 <= claims <= bounds.MAX_NODE_COUNT
