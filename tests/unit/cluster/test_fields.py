"""The local store's server-side apply rules (`kaito.cluster.local.fields`), as a table of cases."""

from __future__ import annotations

import copy

import pytest

from kaito.cluster import errors
from kaito.cluster.local.fields import compute_apply, compute_leaf_paths

BASE = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}


def _obj(**parts):
    obj = copy.deepcopy(BASE)
    for key, value in parts.items():
        if key in ("labels", "annotations", "finalizers"):
            obj["metadata"][key] = value
        else:
            obj[key] = value
    return obj


def test_leaf_paths_skip_identity_and_split_finalizers() -> None:
    obj = _obj(labels={"a": "1"}, finalizers=["x/y"], data={"k": "v"}, status={"s": 1})
    obj["metadata"]["resourceVersion"] = "9"
    assert compute_leaf_paths(obj, status=False) == {
        ("metadata", "labels", "a"), ("metadata", "finalizers[]", "x/y"), ("data", "k")}
    assert compute_leaf_paths(obj, status=True) == {("status", "s")}


def test_first_apply_sets_fields_and_records_ownership() -> None:
    new, managed = compute_apply(BASE, {}, _obj(data={"k": "v"}, status={"x": 1}), "kaito", force=True, status=False)
    assert new["data"] == {"k": "v"} and "status" not in new
    assert managed == {"kaito": [["data", "k"]]}


def test_omitted_fields_of_the_same_manager_are_removed_others_kept() -> None:
    current, managed = compute_apply(BASE, {}, _obj(data={"a": "1", "b": "2"}), "kaito", force=True, status=False)
    current, managed = compute_apply(current, managed, _obj(data={"mine": "x"}), "user", force=True, status=False)
    new, managed = compute_apply(current, managed, _obj(data={"a": "1"}), "kaito", force=True, status=False)
    assert new["data"] == {"a": "1", "mine": "x"}
    assert managed["kaito"] == [["data", "a"]]


def test_removing_the_last_leaf_prunes_empty_parents() -> None:
    current, managed = compute_apply(BASE, {}, _obj(spec={"a": {"b": {"c": 1}}, "keep": 1}), "kaito",
                                     force=True, status=False)
    new, _ = compute_apply(current, managed, _obj(spec={"keep": 1}), "kaito", force=True, status=False)
    assert new["spec"] == {"keep": 1}


def test_contested_field_conflicts_without_force_and_moves_with_force() -> None:
    current, managed = compute_apply(BASE, {}, _obj(data={"k": "v"}), "kaito", force=True, status=False)
    with pytest.raises(errors.Conflict):
        compute_apply(current, managed, _obj(data={"k": "other"}), "user", force=False, status=False)
    same, shared = compute_apply(current, managed, _obj(data={"k": "v"}), "user", force=False, status=False)
    assert shared == {"kaito": [["data", "k"]], "user": [["data", "k"]]}
    taken, moved = compute_apply(current, managed, _obj(data={"k": "other"}), "user", force=True, status=False)
    assert taken["data"]["k"] == "other" and "kaito" not in moved
    # Once shared, one manager dropping the field keeps it: the other still wants it.
    dropped, _ = compute_apply(same, shared, _obj(), "kaito", force=True, status=False)
    assert dropped["data"] == {"k": "v"}


def test_finalizers_are_owned_item_by_item() -> None:
    current, managed = compute_apply(BASE, {}, _obj(finalizers=["kaito.sh/a"]), "kaito", force=True, status=False)
    current, managed = compute_apply(current, managed, _obj(finalizers=["local/b"]), "provisioner",
                                     force=True, status=False)
    assert current["metadata"]["finalizers"] == ["kaito.sh/a", "local/b"]
    new, _ = compute_apply(current, managed, _obj(finalizers=[]), "kaito", force=True, status=False)
    assert new["metadata"]["finalizers"] == ["local/b"]


def test_status_apply_touches_only_status_and_keeps_spec_ownership() -> None:
    current, managed = compute_apply(BASE, {}, _obj(data={"k": "v"}), "kaito", force=True, status=False)
    new, managed = compute_apply(current, managed, _obj(data={"ignored": "1"}, status={"ready": True}), "kaito",
                                 force=True, status=True)
    assert new["data"] == {"k": "v"} and new["status"] == {"ready": True}
    new, managed = compute_apply(new, managed, _obj(status={}), "kaito", force=True, status=True)
    assert new["data"] == {"k": "v"}
    assert ["data", "k"] in managed["kaito"]


def test_empty_dict_leaf_never_wipes_other_keys_and_inputs_are_untouched() -> None:
    current, managed = compute_apply(BASE, {}, _obj(spec={"vol": {"size": "1Gi"}}), "user", force=True, status=False)
    snapshot = copy.deepcopy(current)
    applied = _obj(spec={"vol": {}})
    new, _ = compute_apply(current, managed, applied, "kaito", force=True, status=False)
    assert new["spec"]["vol"] == {"size": "1Gi"}
    assert current == snapshot and applied == _obj(spec={"vol": {}})
