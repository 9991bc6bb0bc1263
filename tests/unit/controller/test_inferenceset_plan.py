"""The InferenceSet controller's pure parts: victim order, replica ordinals and names, revisions,
status, and the plan of one reconcile from a hand-made observation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kaito.api import inferenceset, kinds
from kaito.catalog.facts import build_catalog_facts
from kaito.controller.inferenceset import status as status_mod
from kaito.controller.inferenceset.observe import InferenceSetKey, ObservedSet
from kaito.controller.inferenceset.plan import plan_inferenceset, plan_new_ordinals, select_victims
from kaito.controller.settings import Settings
from kaito.manifests import inferenceset as set_manifests
from kaito.manifests import inferenceset_revision

NOW = datetime(2026, 1, 1, tzinfo=UTC)
UID = "0f0e0d0c-0000-4000-8000-000000000001"
SET = {"apiVersion": "kaito.sh/v1beta1", "kind": "InferenceSet",
       "metadata": {"name": "chat", "namespace": "default", "uid": UID, "generation": 1, "resourceVersion": "7"},
       "spec": {"replicas": 2, "labelSelector": {"matchLabels": {"apps": "chat"}},
                "template": {"resource": {"instanceType": "Standard_NC24ads_A100_v4"},
                             "inference": {"preset": {"name": "phi-4-mini-instruct"}}}}}


def child(ordinal: int | None, *, ready: bool = False, deleting: bool = False, name: str | None = None) -> dict:
    meta: dict = {"name": name or f"chat-{ordinal}", "namespace": "default", "uid": f"u{ordinal}",
                  "labels": {inferenceset.LABEL_CREATED_BY: "chat"}, "annotations": {}}
    if ordinal is not None:
        meta["annotations"][set_manifests.ANNOTATION_REPLICA] = str(ordinal)
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status = {"conditions": [{"type": "WorkspaceSucceeded", "status": "True" if ready else "False"}]}
    return {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "metadata": meta, "status": status}


def names(children) -> list[str]:
    return [c["metadata"]["name"] for c in children]


@pytest.mark.parametrize(("children", "desired", "victims"), [
    # not ready first, then the newest ready one
    ([child(0, ready=True), child(1, ready=True), child(2)], 1, ["chat-2", "chat-1"]),
    # all ready: newest first
    ([child(0, ready=True), child(1, ready=True), child(2, ready=True)], 1, ["chat-2", "chat-1"]),
    # a not-ready old one goes before a ready new one
    ([child(0), child(1, ready=True), child(2, ready=True)], 2, ["chat-0"]),
    # one already being deleted counts toward the target: nothing more to delete
    ([child(0, ready=True), child(1, ready=True), child(2, deleting=True)], 2, []),
    ([child(0, ready=True), child(1, deleting=True), child(2, ready=True), child(3)], 2, ["chat-3"]),
    # to zero: every live one
    ([child(0, ready=True), child(1)], 0, ["chat-1", "chat-0"]),
    # a child without an ordinal (not made by this controller) goes first within its group
    ([child(0, ready=True), child(None, ready=True, name="chat-adopted")], 1, ["chat-adopted"]),
    # nothing over the desired count
    ([child(0, ready=True)], 1, []),
    ([child(0)], 3, []),
])
def test_victims_follow_kaitos_order(children, desired, victims):
    assert names(select_victims(children, desired)) == victims


def test_ready_children_never_drop_below_the_desired_count():
    for ready in range(4):
        for total in range(ready, 6):
            kids = [child(i, ready=i < ready) for i in range(total)]
            for desired in range(total + 1):
                gone = {c["metadata"]["name"] for c in select_victims(kids, desired)}
                left = [c for c in kids if c["metadata"]["name"] not in gone]
                assert len(left) == desired
                assert sum(1 for c in left if c["status"]["conditions"][0]["status"] == "True") >= min(ready, desired)


def test_new_ordinals_fill_the_lowest_free_ones_and_skip_taken_names():
    obj = kinds.parse_object(SET)[0]
    assert plan_new_ordinals([child(0), child(2)], frozenset(), obj, 2) == [1, 3]
    taken = frozenset({set_manifests.compute_child_name("chat", UID, 1)})  # a Workspace of that name exists
    assert plan_new_ordinals([child(0)], taken, obj, 1) == [2]
    assert plan_new_ordinals([], frozenset(), obj, 0) == []


def test_child_names_are_kaito_like_deterministic_and_differ_by_set_uid():
    name = set_manifests.compute_child_name("chat", UID, 0)
    assert name == set_manifests.compute_child_name("chat", UID, 0)
    assert name.startswith("chat-") and len(name) == len("chat-") + 5
    assert set(name[5:]) <= set(set_manifests.NAME_ALPHABET)
    assert name != set_manifests.compute_child_name("chat", UID.replace("1", "2"), 0)
    assert len({set_manifests.compute_child_name("chat", UID, i) for i in range(50)}) >= 49
    long = set_manifests.compute_child_name("a" * 63, UID, 3)
    assert len(long) == 63 and long.startswith("a" * 58)  # Kubernetes' generateName length rule


def test_scaling_is_not_a_revision_but_a_template_change_is():
    base = kinds.parse_object(SET)[0]
    scaled = kinds.parse_object({**SET, "spec": {**SET["spec"], "replicas": 5}})[0]
    other = kinds.parse_object({**SET, "spec": {**SET["spec"], "template": {
        **SET["spec"]["template"], "inference": {"preset": {"name": "phi-3-mini-4k-instruct"}}}}})[0]
    assert inferenceset_revision.compute_spec_hash(base) == inferenceset_revision.compute_spec_hash(scaled)
    assert inferenceset_revision.compute_spec_hash(base) != inferenceset_revision.compute_spec_hash(other)
    first = inferenceset_revision.plan_revision(base, [])
    assert first.number == 1 and first.create["metadata"]["name"] == f"chat-{first.spec_hash[:5]}"
    assert first.create["metadata"]["labels"] == {inferenceset.LABEL_REVISION_NAME: "chat"}
    assert "replicas" not in first.create["data"]["spec"]
    again = inferenceset_revision.plan_revision(scaled, [first.create])
    assert again.create is None and again.number == 1
    history = [{**first.create, "metadata": {**first.create["metadata"], "name": f"r{i}",
                                             "annotations": {inferenceset.ANNOTATION_HASH: f"h{i}"}},
                "revision": i} for i in range(1, 11)]
    trimmed = inferenceset_revision.plan_revision(other, history)
    assert trimmed.number == 11 and trimmed.delete == ("r1",)  # ten kept


def _facts(**overrides) -> status_mod.SetFacts:
    base = dict(generation=3, desired=2, ready=1, selector="inferenceset.kaito.sh/created-by=chat")
    return status_mod.SetFacts(**{**base, **overrides})


def _cond(status: dict, type_: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_status_follows_kaito_and_keeps_transition_times():
    first = status_mod.compute_set_status(None, _facts(), NOW)
    assert (first["replicas"], first["readyReplicas"], first["selector"]) == (
        2, 1, "inferenceset.kaito.sh/created-by=chat")
    ready = _cond(first, inferenceset.CONDITION_READY)
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "inferencesetNotReady", "inferenceset is not ready, 1/2 replicas are ready")
    assert ready["observedGeneration"] == 3
    later = datetime(2026, 1, 2, tzinfo=UTC)
    same = status_mod.compute_set_status(first, _facts(), later)
    assert not status_mod.status_changed(first, same)  # nothing new: no write
    done = status_mod.compute_set_status({**first, "autoUpgrade": {"numDriftedWorkspaces": 0}}, _facts(ready=2), later)
    assert _cond(done, inferenceset.CONDITION_READY)["reason"] == "inferencesetReady"
    assert _cond(done, inferenceset.CONDITION_READY)["lastTransitionTime"].startswith("2026-01-02")
    assert done["autoUpgrade"] == {"numDriftedWorkspaces": 0}  # not ours: kept
    failed = status_mod.compute_set_status(done, _facts(problem="spec.template: bad"), later)
    assert _cond(failed, inferenceset.CONDITION_READY)["reason"] == "inferencesetFailed"
    going = status_mod.compute_set_status(done, _facts(deleting=True), later)
    assert _cond(going, inferenceset.CONDITION_DELETING)["reason"] == "inferencesetDeleted"
    assert going["readyReplicas"] == 2  # the rest stays as it was while deleting


def test_benchmark_condition_and_aggregated_peak_tpm():
    kids = [{"status": {"performance": {"metrics": {"peakTokensPerMinute": {"description": "d", "value": v}}}}}
            for v in ("1200.5", "800", "oops")]
    assert status_mod.compute_benchmark(kids) == (2, 2000.5)
    pending = status_mod.compute_set_status(None, _facts(benchmark=True, benchmarked=1, total_tpm=900.0,
                                                         runtime="vllm"), NOW)
    bench = _cond(pending, inferenceset.CONDITION_BENCHMARK)
    assert (bench["status"], bench["reason"], bench["message"]) == ("False", "BenchmarkPending",
                                                                     "1/2 replicas benchmarked")
    assert pending["performance"]["metrics"]["aggregatedPeakTokensPerMinute"]["value"] == "900.00"
    complete = status_mod.compute_set_status(pending, _facts(benchmark=True, benchmarked=2, total_tpm=1800.0), NOW)
    assert _cond(complete, inferenceset.CONDITION_BENCHMARK)["reason"] == "BenchmarkCompleted"
    off = status_mod.compute_set_status(complete, _facts(), NOW)
    assert "performance" not in off  # the benchmark turned off: its number goes


def test_a_new_set_gets_its_finalizer_revision_and_children_in_one_plan():
    observed = ObservedSet(key=InferenceSetKey("default", "chat"), inference_set=SET)
    plan = plan_inferenceset(observed, Settings(), build_catalog_facts(), NOW)
    assert plan.set_patch["metadata"]["finalizers"] == [inferenceset.FINALIZER]
    assert plan.set_patch["metadata"]["annotations"][inferenceset.ANNOTATION_REVISION] == "1"
    assert plan.revision is not None and len(plan.create) == 2
    assert [c["metadata"]["name"] for c in plan.create] == [
        set_manifests.compute_child_name("chat", UID, i) for i in (0, 1)]
    assert plan.status["replicas"] == 2 and plan.apply == () and plan.delete == ()
    reasons = [e[1] for e in plan.events]
    assert reasons.count("WorkspaceCreated") == 2 and "RevisionCreated" in reasons
