"""The local store is its own API server, so it runs admission on every Workspace write, whoever
writes (kaito apply, a script, the controller): the UPDATE rules against the stored object and the
CREATE rules otherwise, through `kaito.api.admission.admit`. A refused write is `Invalid`, names each
field in KAITO's terms ("field is immutable"), and leaves the stored object as it was."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest

from kaito.api import labels
from kaito.cluster import errors
from kaito.cluster.local import LocalCluster
from kaito.cluster.protocol import WORKSPACE, WORKSPACE_V1ALPHA1
from kaito.operator.controlplane import build_local_admission

ALPHA = {
    "apiVersion": "kaito.sh/v1alpha1", "kind": "Workspace",
    "metadata": {"name": "ws", "namespace": "default"},
    "resource": {"instanceType": "Standard_NC12s_v3", "labelSelector": {"matchLabels": {"apps": "ws"}}},
    "inference": {"preset": {"name": "falcon-7b"}},
}
BETA = {**copy.deepcopy(ALPHA), "apiVersion": "kaito.sh/v1beta1",
        "resource": {"instanceType": "Standard_NC24ads_A100_v4", "labelSelector": {"matchLabels": {"apps": "ws"}}}}

IMMUTABLE = [
    ("instanceType", {"resource": {"instanceType": "Standard_NC24ads_A100_v4"}}, "resource.instanceType"),
    ("count", {"resource": {"count": 2}}, "resource.count"),
    ("labelSelector", {"resource": {"labelSelector": {"matchLabels": {"apps": "other"}}}}, "resource.labelSelector"),
    ("preset", {"inference": {"preset": {"name": "mistral-7b"}}}, "inference.preset"),
]


def _changed(base: dict, change: dict) -> dict:
    out = copy.deepcopy(base)
    for section, fields in change.items():
        out[section] = {**out[section], **copy.deepcopy(fields)}
    return out


@pytest.fixture
async def store(tmp_path):
    cluster = LocalCluster(tmp_path / "store.db", poll_interval=0.02, admission=build_local_admission())
    try:
        yield cluster
    finally:
        await cluster.close()


@pytest.mark.parametrize(("field", "change", "path"), IMMUTABLE, ids=[c[0] for c in IMMUTABLE])
@pytest.mark.parametrize("base", [ALPHA, BETA], ids=["v1alpha1", "v1beta1"])
async def test_an_immutable_field_cannot_change_through_the_store(store, base, field, change, path) -> None:
    kind = WORKSPACE_V1ALPHA1 if base["apiVersion"].endswith("v1alpha1") else WORKSPACE
    if field == "instanceType" and base is BETA:
        change = {"resource": {"instanceType": "Standard_NC96ads_A100_v4"}}
    await store.apply(copy.deepcopy(base), field_manager="kubectl")
    before = await store.get(kind, "ws", "default")
    with pytest.raises(errors.Invalid) as refused:
        await store.apply(_changed(base, change), field_manager="kubectl")
    message = str(refused.value)
    # KAITO's words: "field is immutable" (v1beta1 says so of instanceType in its own phrase).
    assert f"{path}: field is immutable" in message or f"{path}: instanceType cannot change" in message, message
    assert "default/ws" in message
    after = await store.get(kind, "ws", "default")
    assert after == before  # nothing written, not even a new resourceVersion


async def test_a_count_bomb_is_refused_and_nothing_is_stored(store) -> None:
    bomb = _changed(BETA, {"resource": {"count": 1_000_000}})
    with pytest.raises(errors.Invalid, match=r"resource\.count: count 1000000 .* at most 100"):
        await store.apply(bomb, field_manager="kubectl")
    assert (await store.list(WORKSPACE)).items == []


async def test_writes_the_rules_allow_still_pass(store) -> None:
    await store.apply(copy.deepcopy(BETA), field_manager="kubectl")
    # The controller's bookkeeping (finalizer, revision annotation) and a mutable field (adapters).
    await store.apply({"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace",
                       "metadata": {"name": "ws", "namespace": "default", "finalizers": [labels.FINALIZER_WORKSPACE],
                                    "annotations": {labels.ANNOTATION_REVISION: "1"}}}, field_manager="kaito",
                      force=False)
    adapters = [{"source": {"name": "a1", "image": "registry.example.com/adapters/a1:1"}}]
    await store.apply(_changed(BETA, {"inference": {"adapters": adapters}}), field_manager="kubectl")
    stored = await store.get(WORKSPACE, "ws", "default")
    assert stored["inference"]["adapters"] == adapters
    assert stored["metadata"]["finalizers"] == [labels.FINALIZER_WORKSPACE]
    # Status is the controller's: never judged by admission.
    await store.apply_status({**stored, "status": {"state": "Running"}}, field_manager="kaito")
    # A Workspace on its way out is never refused: its finalizer must be removable.
    await store.delete(WORKSPACE, "ws", "default")
    gone = await store.get(WORKSPACE, "ws", "default")
    await store.apply({"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace",
                       "metadata": {"name": "ws", "namespace": "default", "finalizers": [],
                                    "resourceVersion": gone["metadata"]["resourceVersion"]}},
                      field_manager="kaito", force=False)
    with pytest.raises(errors.NotFound):
        await store.get(WORKSPACE, "ws", "default")


async def test_an_object_stored_past_a_bound_may_keep_it_but_not_grow_it(tmp_path) -> None:
    """Ratcheting, as Kubernetes does for CRD schemas: the controller can still write its bookkeeping
    on an object stored before the bound (its own re-check refuses to build anything for it)."""
    path = tmp_path / "store.db"
    unguarded = LocalCluster(path)
    try:
        await unguarded.apply(_changed(BETA, {"resource": {"count": 1000}}), field_manager="kubectl")
    finally:
        await unguarded.close()
    guarded = LocalCluster(path, admission=build_local_admission())
    try:
        await guarded.apply({"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace",
                             "metadata": {"name": "ws", "namespace": "default",
                                          "annotations": {labels.ANNOTATION_REVISION: "1"}}},
                            field_manager="kaito", force=False)
        with pytest.raises(errors.Invalid, match="resource.count"):
            await guarded.apply(_changed(BETA, {"resource": {"count": 5000}}), field_manager="kubectl")
    finally:
        await guarded.close()


def test_every_opener_of_the_local_store_passes_admission() -> None:
    """Any path that writes the store (the CLI, the control plane, a future one) goes through admission."""
    src = Path(__file__).resolve().parents[3] / "src" / "kaito"
    calls = []
    for file in src.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "LocalCluster":
                calls.append((file.relative_to(src), {k.arg for k in node.keywords}))
    assert calls, "no LocalCluster opener found: has the class moved?"
    assert [c for c in calls if "admission" not in c[1]] == []
