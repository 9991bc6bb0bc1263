"""The revision hash and ControllerRevision planning (reference §3.3)."""

from __future__ import annotations

import hashlib

from kaito.api import labels
from kaito.manifests import revision
from tests.unit.manifests import cases


def test_hash_ignores_metadata_and_status() -> None:
    ws = cases.workspace("inference-falcon-7b")
    before = revision.compute_revision_hash(ws)
    ws.metadata.labels = {"team": "a"}
    ws.metadata.annotations = {labels.ANNOTATION_ENABLE_LB: "True", labels.ANNOTATION_REVISION: "7"}
    ws.metadata.resource_version = "123"
    ws.metadata.generation = 9
    assert revision.compute_revision_hash(ws) == before


def test_hash_changes_with_each_spec_section() -> None:
    ws = cases.workspace("inference-adapters-phi-3")
    seen = {revision.compute_revision_hash(ws)}
    ws.resource.count = 2
    seen.add(revision.compute_revision_hash(ws))
    ws.inference.adapters[0].strength = "0.5"
    seen.add(revision.compute_revision_hash(ws))
    ws.resource.label_selector.match_labels = {"apps": "other"}
    seen.add(revision.compute_revision_hash(ws))
    assert len(seen) == 4


def test_hash_is_kaitos_recipe_over_compact_json_sections() -> None:
    ws = cases.make_workspace("""
metadata: {name: w}
resource: {count: 1, instanceType: Standard_NC12s_v3, labelSelector: {matchLabels: {apps: "a<b"}}}
inference: {preset: {name: falcon-7b}}
""")
    expected = (
        '{"count":1,"instanceType":"Standard_NC12s_v3","labelSelector":{"matchLabels":{"apps":"a\\u003cb"}}}\n'
        '{"preset":{"name":"falcon-7b","accessMode":"public"}}\n'
        "null\n"
    )
    assert revision.compute_revision_hash(ws) == hashlib.sha256(expected.encode()).hexdigest()


def test_first_revision_is_one_and_is_reused_for_the_same_spec() -> None:
    ws = cases.workspace("inference-falcon-7b")
    plan = revision.plan_revision(ws, [])
    assert plan.number == 1 and plan.delete == ()
    rev = plan.create
    assert rev["kind"] == "ControllerRevision" and rev["revision"] == 1
    assert rev["metadata"]["name"] == f"workspace-falcon-7b-{plan.spec_hash[:5]}"
    assert rev["metadata"]["labels"][labels.LABEL_REVISION_WORKSPACE_NAME] == "workspace-falcon-7b"
    assert rev["metadata"]["annotations"][labels.ANNOTATION_HASH] == plan.spec_hash
    assert set(rev["data"]) == {"resource", "inference", "tuning"} and rev["data"]["tuning"] is None
    again = revision.plan_revision(ws, [rev])
    assert again.create is None and again.number == 1 and again.name == rev["metadata"]["name"]


def test_spec_change_makes_the_next_revision_and_trims_history_to_the_limit() -> None:
    ws = cases.workspace("inference-falcon-7b")
    history = []
    for count in range(1, 13):
        ws.resource.count = count
        plan = revision.plan_revision(ws, history)
        assert plan.number == count
        history = [r for r in history if r["metadata"]["name"] not in plan.delete] + [plan.create]
        assert len(history) <= revision.MAX_REVISION_HISTORY
    assert [r["revision"] for r in history] == list(range(3, 13))


def test_a_name_taken_by_another_hash_gets_a_longer_name_instead_of_wedging() -> None:
    ws = cases.workspace("inference-falcon-7b")
    spec_hash = revision.compute_revision_hash(ws)
    impostor = {
        "metadata": {"name": revision.revision_name(ws.name, spec_hash), "annotations": {labels.ANNOTATION_HASH: "f" * 64}},
        "revision": 4,
    }
    plan = revision.plan_revision(ws, [impostor])
    assert plan.name == revision.revision_name(ws.name, spec_hash, 10)
    assert plan.number == 5 and plan.create["metadata"]["name"] == plan.name


def test_hash_ignores_map_key_order_and_empty_lists() -> None:
    a = cases.make_workspace("""
metadata: {name: w}
resource: {labelSelector: {matchLabels: {x: "1", y: "2"}}}
inference: {preset: {name: falcon-7b}}
""")
    b = cases.make_workspace("""
metadata: {name: w}
resource: {labelSelector: {matchLabels: {y: "2", x: "1"}}, preferredNodes: []}
inference: {preset: {name: falcon-7b}, adapters: []}
""")
    assert revision.compute_revision_hash(a) == revision.compute_revision_hash(b)
