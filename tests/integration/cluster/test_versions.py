"""One Workspace, two served versions, on both backends: stored once, answered in the version asked.

The local store does what the API server does with the CRD's conversion webhook and the chart's
mutating webhook (the emulator plays both): a Workspace written in v1alpha1 or v1beta1 is stored
as v1beta1, read back losslessly in either, and stamped with the version its spec was written in —
a write that leaves the spec alone (the controller's finalizer) keeps the stamp. The local store also
migrates a store file written before v1beta1 existed, and its Workspaces keep working.
"""

from __future__ import annotations

import asyncio
import copy

import pytest

from kaito.api import labels
from kaito.cluster import errors
from kaito.cluster.local import LocalCluster
from kaito.cluster.local.store import ObjectStore
from kaito.cluster.protocol import SERVICE, WORKSPACE, WORKSPACE_V1ALPHA1

STAMP = labels.ANNOTATION_API_VERSION
ALPHA = {
    "apiVersion": "kaito.sh/v1alpha1", "kind": "Workspace",
    "metadata": {"name": "alpha", "namespace": "default"},
    "resource": {"labelSelector": {"matchLabels": {"apps": "alpha"}}},
    "inference": {"preset": {"name": "phi-3-mini-4k-instruct"}},
}
BETA = {
    "apiVersion": "kaito.sh/v1beta1", "kind": "Workspace",
    "metadata": {"name": "beta", "namespace": "default"},
    "resource": {"instanceType": "Standard_NC24ads_A100_v4", "labelSelector": {"matchLabels": {"apps": "beta"}},
                 "partition": {"mode": "mig", "profile": "1g.10gb"}},
    "inference": {"preset": {"name": "phi-4-mini-instruct", "presetOptions": {"modelAccessSecret": "hf"}},
                  "config": "params"},
}


def _spec(obj: dict) -> dict:
    return {k: obj.get(k) for k in ("resource", "inference", "tuning") if k in obj}


async def test_a_v1alpha1_write_is_stored_as_v1beta1_and_read_back_in_either(backend) -> None:
    c = backend.cluster
    written = await c.apply(copy.deepcopy(ALPHA), field_manager="kubectl")
    assert written["apiVersion"] == "kaito.sh/v1alpha1"  # answered in the version it was written in
    stored = await c.get(WORKSPACE, "alpha")
    assert stored["apiVersion"] == "kaito.sh/v1beta1"
    assert stored["metadata"]["annotations"][STAMP] == "kaito.sh/v1alpha1"
    assert stored["resource"]["instanceType"] == "Standard_NC12s_v3"  # v1alpha1's default, now explicit
    again = await c.get(WORKSPACE_V1ALPHA1, "alpha")
    assert again["apiVersion"] == "kaito.sh/v1alpha1"
    assert again["metadata"]["uid"] == stored["metadata"]["uid"]
    assert again["inference"]["preset"]["name"] == "phi-3-mini-4k-instruct"
    assert [w["apiVersion"] for w in (await c.list(WORKSPACE_V1ALPHA1)).items] == ["kaito.sh/v1alpha1"]
    assert [w["apiVersion"] for w in (await c.list(WORKSPACE)).items] == ["kaito.sh/v1beta1"]


async def test_v1beta1_only_fields_survive_a_v1alpha1_read_and_rewrite(backend) -> None:
    c = backend.cluster
    await c.apply(copy.deepcopy(BETA), field_manager="kubectl")
    alpha = await c.get(WORKSPACE_V1ALPHA1, "beta")
    assert "partition" not in alpha["resource"]  # v1alpha1 has no schema for it: it rides in the annotation
    assert "conversion.kaito.sh/hub-fields" in alpha["metadata"]["annotations"]
    # A v1alpha1 client writes back what it read (a label added): nothing v1beta1 holds is lost...
    alpha["metadata"]["labels"] = {"team": "a"}
    for key in ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields"):
        alpha["metadata"].pop(key, None)
    await c.apply(alpha, field_manager="kubectl")
    stored = await c.get(WORKSPACE, "beta")
    defaulted = copy.deepcopy(_spec(BETA))  # the CRD's defaults, now explicit: count and accessMode
    defaulted["resource"]["count"] = 1
    defaulted["inference"]["preset"]["accessMode"] = "public"
    assert _spec(stored) == defaulted
    assert stored["metadata"]["labels"] == {"team": "a"}
    # ... and, the spec being the same, the stamp still says how the spec was written.
    assert stored["metadata"]["annotations"][STAMP] == "kaito.sh/v1beta1"


async def test_the_stamp_follows_the_spec_not_bookkeeping_writes(backend) -> None:
    c = backend.cluster
    await c.apply(copy.deepcopy(ALPHA), field_manager="kubectl")
    # The controller's finalizer, written in the storage version: the record stays v1alpha1.
    await c.apply({"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace",
                   "metadata": {"name": "alpha", "namespace": "default", "finalizers": ["x.kaito.sh"]}},
                  field_manager="kaito-controller")
    stored = await c.get(WORKSPACE, "alpha")
    assert stored["metadata"]["finalizers"] == ["x.kaito.sh"]
    assert stored["metadata"]["annotations"][STAMP] == "kaito.sh/v1alpha1"
    # The user rewrites the spec in v1beta1: now it was written in v1beta1.
    beta = copy.deepcopy(ALPHA) | {"apiVersion": "kaito.sh/v1beta1"}
    beta["resource"] = {**ALPHA["resource"], "instanceType": "Standard_NC24ads_A100_v4"}
    await c.apply(beta, field_manager="kubectl")
    assert (await c.get(WORKSPACE, "alpha"))["metadata"]["annotations"][STAMP] == "kaito.sh/v1beta1"


async def test_a_watch_answers_in_its_version(backend) -> None:
    c = backend.cluster
    start = (await c.list(WORKSPACE_V1ALPHA1)).resource_version
    await c.apply(copy.deepcopy(BETA), field_manager="kubectl")
    events = c.watch(WORKSPACE_V1ALPHA1, resource_version=start)
    event = await asyncio.wait_for(anext(events), 10)
    await events.aclose()
    assert event.type == "ADDED" and event.object["apiVersion"] == "kaito.sh/v1alpha1"
    assert "partition" not in event.object["resource"]


async def test_a_workspace_that_is_no_workspace_is_refused(backend) -> None:
    with pytest.raises(errors.Invalid, match="labelSelector"):
        await backend.cluster.apply({**copy.deepcopy(ALPHA), "resource": {"count": 2}}, field_manager="kubectl")


async def test_a_store_from_before_v1beta1_is_migrated_and_keeps_working(tmp_path) -> None:
    path = tmp_path / "store.db"
    old = ObjectStore(path)  # what the store wrote before: Workspaces under the v1alpha1 kind
    legacy = old.apply(copy.deepcopy(ALPHA), "kubectl", force=True, status=False)
    old.apply({"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "alpha", "namespace": "default", "ownerReferences": [
            {"apiVersion": "kaito.sh/v1alpha1", "kind": "Workspace", "name": "alpha", "uid": legacy["metadata"]["uid"],
             "controller": True}]}}, "kaito", force=True, status=False)
    assert old._db.execute("SELECT count(*) FROM objects WHERE kind='kaito.sh/v1alpha1/Workspace'").fetchone() == (1,)
    old.close()

    c = LocalCluster(path, poll_interval=0.02)
    try:
        stored = await c.get(WORKSPACE, "alpha")
        assert stored["apiVersion"] == "kaito.sh/v1beta1"
        assert stored["metadata"]["uid"] == legacy["metadata"]["uid"]  # the same object: owners still match
        assert stored["metadata"]["annotations"][STAMP] == "kaito.sh/v1alpha1"
        assert (await c.get(WORKSPACE_V1ALPHA1, "alpha"))["inference"] == ALPHA["inference"] | {
            "preset": {"name": "phi-3-mini-4k-instruct", "accessMode": "public"}}
        # It can be updated and deleted as before; its dependents go with it.
        await c.apply(copy.deepcopy(ALPHA) | {"metadata": {**ALPHA["metadata"], "labels": {"x": "y"}}},
                      field_manager="kubectl")
        assert (await c.get(WORKSPACE, "alpha"))["metadata"]["labels"] == {"x": "y"}
        await c.delete(WORKSPACE_V1ALPHA1, "alpha")
        with pytest.raises(errors.NotFound):
            await c.get(WORKSPACE, "alpha")
        with pytest.raises(errors.NotFound):
            await c.get(SERVICE, "alpha")
    finally:
        await c.close()
    again = LocalCluster(path)  # opening it again migrates nothing and loses nothing
    await again.close()
