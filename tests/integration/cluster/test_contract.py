"""The `Cluster` contract, run against both homes: the local SQLite store and lightkube over HTTP.

Whatever the controller relies on is asserted here once for both backends, so a difference
between them shows up as a failing parameter, not as a controller bug on one of them.
"""

from __future__ import annotations

import asyncio
import copy

import pytest

from kaito.cluster import errors
from kaito.cluster.protocol import DEPLOYMENT, EVENT, NODECLAIM, SERVICE, WORKSPACE, Cluster, WatchEvent
from tests.integration.cluster.builders import make_deployment, make_service, make_workspace


def _rv(obj: dict) -> str:
    return obj["metadata"]["resourceVersion"]


async def _collect(stream, count: int, timeout: float = 5.0) -> list[WatchEvent]:
    got: list[WatchEvent] = []

    async def run() -> None:
        async for event in stream:
            got.append(event)
            if len(got) == count:
                return

    await asyncio.wait_for(run(), timeout)
    await stream.aclose()
    return got


async def test_backend_implements_the_protocol(backend) -> None:
    assert isinstance(backend.cluster, Cluster)


async def test_apply_creates_then_get_returns_server_metadata(backend) -> None:
    created = await backend.cluster.apply(make_deployment("a"))
    meta = created["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert meta["generation"] == 1
    assert meta["namespace"] == "default"
    fetched = await backend.cluster.get(DEPLOYMENT, "a")
    assert fetched["metadata"]["uid"] == meta["uid"]
    assert fetched["spec"]["replicas"] == 1
    with pytest.raises(errors.NotFound):
        await backend.cluster.get(DEPLOYMENT, "missing")


async def test_list_filters_by_labels_and_namespace(backend) -> None:
    c = backend.cluster
    await c.apply(make_deployment("a", labels={"kaito.sh/workspace": "one", "tier": "x"}))
    await c.apply(make_deployment("b", labels={"kaito.sh/workspace": "two", "tier": "x"}))
    await c.apply(make_deployment("c", labels={"kaito.sh/workspace": "one"}, namespace="other"))
    one = await c.list(DEPLOYMENT, labels={"kaito.sh/workspace": "one"})
    assert sorted(o["metadata"]["name"] for o in one.items) == ["a", "c"]
    both = await c.list(DEPLOYMENT, labels={"kaito.sh/workspace": "one", "tier": "x"})
    assert [o["metadata"]["name"] for o in both.items] == ["a"]
    in_default = await c.list(DEPLOYMENT, namespace="default")
    assert sorted(o["metadata"]["name"] for o in in_default.items) == ["a", "b"]
    assert one.resource_version


async def test_reapplying_the_same_object_is_not_a_write(backend) -> None:
    first = await backend.cluster.apply(make_deployment("a"))
    again = await backend.cluster.apply(make_deployment("a"))
    assert _rv(again) == _rv(first)
    assert again["metadata"]["generation"] == 1


async def test_generation_moves_only_on_spec_change(backend) -> None:
    c = backend.cluster
    first = await c.apply(make_deployment("a"))
    relabelled = await c.apply(make_deployment("a", labels={"kaito.sh/workspace": "a", "extra": "1"}))
    assert _rv(relabelled) != _rv(first)
    assert relabelled["metadata"]["generation"] == 1
    scaled = await c.apply(make_deployment("a", replicas=3, labels={"kaito.sh/workspace": "a", "extra": "1"}))
    assert scaled["metadata"]["generation"] == 2
    assert scaled["spec"]["replicas"] == 3


async def test_status_is_isolated_from_spec(backend) -> None:
    c = backend.cluster
    with_status = make_deployment("a")
    with_status["status"] = {"readyReplicas": 7}
    created = await c.apply(with_status)
    assert "status" not in created or created["status"].get("readyReplicas") != 7

    status_only = make_deployment("a", replicas=9)  # spec here must be ignored by the status write
    status_only["status"] = {"readyReplicas": 1}
    written = await c.apply_status(status_only)
    assert written["status"] == {"readyReplicas": 1}
    assert written["spec"]["replicas"] == 1
    assert written["metadata"]["generation"] == 1

    respec = await c.apply(make_deployment("a", replicas=2))
    assert respec["status"] == {"readyReplicas": 1}
    unchanged = await c.apply_status(status_only)
    assert _rv(unchanged) == _rv(respec)  # same status again: no write

    missing = make_deployment("nope")
    missing["status"] = {"readyReplicas": 1}
    with pytest.raises(errors.NotFound):
        await c.apply_status(missing)


async def test_stale_resource_version_conflicts(backend) -> None:
    c = backend.cluster
    first = await c.apply(make_deployment("a"))
    await c.apply(make_deployment("a", replicas=2))
    stale = make_deployment("a", replicas=3)
    stale["metadata"]["resourceVersion"] = _rv(first)
    with pytest.raises(errors.Conflict):
        await c.apply(stale)
    stale_status = make_deployment("a")
    stale_status["metadata"]["resourceVersion"] = _rv(first)
    stale_status["status"] = {"readyReplicas": 1}
    with pytest.raises(errors.Conflict):
        await c.apply_status(stale_status)
    assert (await c.get(DEPLOYMENT, "a"))["spec"]["replicas"] == 2


async def test_field_managers_own_their_fields(backend) -> None:
    c = backend.cluster
    await c.apply(make_deployment("a", labels={"kaito.sh/workspace": "a", "old": "1"}))
    other = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "a", "namespace": "default", "annotations": {"note": "by hand"}}}
    await c.apply(other, field_manager="kubectl")
    after = await c.apply(make_deployment("a"))  # kaito no longer applies the "old" label
    assert after["metadata"]["labels"] == {"kaito.sh/workspace": "a"}
    assert after["metadata"]["annotations"] == {"note": "by hand"}

    contested = copy.deepcopy(other)
    contested["metadata"]["labels"] = {"kaito.sh/workspace": "stolen"}
    with pytest.raises(errors.Conflict):
        await c.apply(contested, field_manager="kubectl", force=False)
    taken = await c.apply(contested, field_manager="kubectl", force=True)
    assert taken["metadata"]["labels"]["kaito.sh/workspace"] == "stolen"


async def test_finalizers_hold_deletion_until_removed(backend) -> None:
    c = backend.cluster
    await c.apply(make_deployment("a", finalizers=["kaito.sh/cleanup"]))
    await c.delete(DEPLOYMENT, "a")
    marked = await c.get(DEPLOYMENT, "a")
    assert marked["metadata"]["deletionTimestamp"]
    await c.delete(DEPLOYMENT, "a")  # deleting again while marked changes nothing
    assert _rv(await c.get(DEPLOYMENT, "a")) == _rv(marked)
    await c.apply(make_deployment("a", finalizers=[]))
    with pytest.raises(errors.NotFound):
        await c.get(DEPLOYMENT, "a")
    with pytest.raises(errors.NotFound):
        await c.delete(DEPLOYMENT, "a")


async def test_cluster_scoped_kinds_ignore_namespaces(backend) -> None:
    c = backend.cluster
    claim = {"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
             "metadata": {"name": "ws0abc", "labels": {"kaito.sh/workspace": "ws"}},
             "spec": {"requirements": []}}
    created = await c.apply(claim)
    assert "namespace" not in created["metadata"] or not created["metadata"]["namespace"]
    assert (await c.get(NODECLAIM, "ws0abc", namespace="ignored"))["metadata"]["uid"] == created["metadata"]["uid"]
    listed = await c.list(NODECLAIM, labels={"kaito.sh/workspace": "ws"})
    assert [o["metadata"]["name"] for o in listed.items] == ["ws0abc"]
    await c.delete(NODECLAIM, "ws0abc")
    assert (await c.list(NODECLAIM)).items == []


async def test_watch_from_a_resource_version_sees_every_change_in_order(backend) -> None:
    c = backend.cluster
    await c.apply(make_deployment("before"))
    start = (await c.list(DEPLOYMENT)).resource_version
    stream = c.watch(DEPLOYMENT, labels={"kaito.sh/workspace": "a"}, resource_version=start)
    collecting = asyncio.create_task(_collect(stream, 3))
    await c.apply(make_deployment("a"))
    await c.apply(make_deployment("other", labels={"kaito.sh/workspace": "zzz"}))  # filtered out
    await c.apply(make_deployment("a", replicas=2))
    await c.delete(DEPLOYMENT, "a")
    events = await collecting
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert [e.object["metadata"]["name"] for e in events] == ["a", "a", "a"]
    assert events[1].object["spec"]["replicas"] == 2
    assert int(_rv(events[0].object)) < int(_rv(events[1].object)) < int(_rv(events[2].object))


async def test_watch_without_version_starts_with_current_objects(backend) -> None:
    c = backend.cluster
    await c.apply(make_deployment("a"))
    await c.apply(make_deployment("b"))
    stream = c.watch(DEPLOYMENT)
    collecting = asyncio.create_task(_collect(stream, 3))
    await asyncio.sleep(0.05)
    await c.apply(make_deployment("a", replicas=4))
    events = await collecting
    assert [(e.type, e.object["metadata"]["name"]) for e in events[:2]] == [("ADDED", "a"), ("ADDED", "b")]
    assert (events[2].type, events[2].object["spec"]["replicas"]) == ("MODIFIED", 4)


async def test_watch_from_a_compacted_version_is_gone_and_a_relist_recovers(backend) -> None:
    c = backend.cluster
    old = await c.apply(make_deployment("a"))
    await c.apply(make_deployment("a", replicas=2))
    await backend.compact()
    with pytest.raises(errors.Gone):
        async for _ in c.watch(DEPLOYMENT, resource_version=_rv(old)):
            pass
    relisted = await c.list(DEPLOYMENT)
    assert [o["spec"]["replicas"] for o in relisted.items] == [2]
    stream = c.watch(DEPLOYMENT, resource_version=relisted.resource_version)
    collecting = asyncio.create_task(_collect(stream, 1))
    await c.apply(make_deployment("a", replicas=3))
    (event,) = await collecting
    assert (event.type, event.object["spec"]["replicas"]) == ("MODIFIED", 3)


async def test_events_are_recorded_and_aggregated(backend) -> None:
    c = backend.cluster
    workspace = await c.apply({"apiVersion": "kaito.sh/v1alpha1", "kind": "Workspace",
                               "metadata": {"name": "ws"}, "resource": {"instanceType": "Standard_NC12s_v3",
                                                                        "labelSelector": {"matchLabels": {"a": "b"}}}})
    await c.emit_event(workspace, "Normal", "NodeClaimCreated", "created node claim ws0abc")
    await c.emit_event(workspace, "Normal", "NodeClaimCreated", "created node claim ws0abc")
    await c.emit_event(workspace, "Warning", "PresetUnknown", "preset 'nope' is not known")
    events = sorted((await c.list(EVENT)).items, key=lambda e: e["reason"])
    assert [(e["reason"], e["count"]) for e in events] == [("NodeClaimCreated", 2), ("PresetUnknown", 1)]
    assert events[0]["involvedObject"]["uid"] == workspace["metadata"]["uid"]
    assert events[0]["involvedObject"]["kind"] == WORKSPACE.kind


async def test_unknown_kind_and_missing_name_are_invalid(backend) -> None:
    with pytest.raises(errors.Invalid):
        await backend.cluster.apply({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}})
    with pytest.raises(errors.Invalid):
        await backend.cluster.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}})


async def test_deleting_an_owner_removes_its_dependents(backend) -> None:
    c = backend.cluster
    ws = await c.apply(make_workspace("ws"))
    await c.apply(make_deployment("ws", owner=ws))
    await c.apply(make_service("ws", ws))
    start = (await c.list(DEPLOYMENT)).resource_version
    await c.delete(WORKSPACE, "ws")
    assert (await c.list(DEPLOYMENT)).items == []
    assert (await c.list(SERVICE)).items == []
    events = []
    async for event in c.watch(DEPLOYMENT, resource_version=start):
        events.append(event)
        break
    assert (events[0].type, events[0].object["metadata"]["name"]) == ("DELETED", "ws")


async def test_cascade_respects_dependent_finalizers_and_other_owners(backend) -> None:
    c = backend.cluster
    one, two = await c.apply(make_workspace("one")), await c.apply(make_workspace("two"))
    await c.apply(make_service("shared", one, two))
    await c.apply(make_deployment("held", owner=one, finalizers=["example.com/hold"]))
    await c.delete(WORKSPACE, "one")
    assert (await c.get(SERVICE, "shared"))["metadata"]["name"] == "shared"  # "two" still owns it
    held = await c.get(DEPLOYMENT, "held")
    assert held["metadata"]["deletionTimestamp"]
    await c.delete(WORKSPACE, "two")
    with pytest.raises(errors.NotFound):
        await c.get(SERVICE, "shared")
