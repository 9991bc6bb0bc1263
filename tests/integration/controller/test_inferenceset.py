"""InferenceSets on both cluster homes (the local store, and the kube backend over HTTP against the API
emulator): one child Workspace per replica, scaling with KAITO's victim order, hand-deleted children
replaced, deletion through the finalizer, status and revisions, and the manager's watches."""

from __future__ import annotations

import asyncio

from kaito.api import inferenceset
from kaito.cluster import errors, protocol
from kaito.controller.manager import Manager
from kaito.controller.observe import WorkspaceKey
from kaito.controller.settings import Settings
from kaito.manifests import inferenceset as set_manifests
from tests.integration.controller.harness import conditions
from tests.integration.controller.set_harness import (
    SET_KEY,
    SetDriver,
    children,
    live_children,
    make_inferenceset,
    scale,
)
from tests.integration.controller.test_manager import kubelet_running, wait_for


def _ordinal(child: dict) -> int:
    return int(child["metadata"]["annotations"][set_manifests.ANNOTATION_REPLICA])


def _ready(child: dict) -> bool:
    return conditions(child).get("WorkspaceSucceeded", ("",))[0] == "True"


async def _make_ready(driver: SetDriver, child: dict) -> None:
    """Drive one child (and only it) until its model server is ready."""
    key = WorkspaceKey("default", child["metadata"]["name"])
    for _ in range(10):
        await driver.workspaces.reconcile(key)
        await driver.kubelet.step()
        if _ready(await driver.cluster.get(protocol.WORKSPACE, key.name, "default")):
            return
    raise AssertionError(f"{key} never became ready")


async def test_scale_one_three_one_with_exact_children_and_the_right_victims(cluster, kubelet):
    driver = SetDriver(cluster, kubelet)
    await cluster.inner.apply(make_inferenceset(replicas=1), field_manager="kubectl")
    await driver.settle()
    stored = await cluster.get(protocol.INFERENCESET, "chat")
    uid = stored["metadata"]["uid"]
    (first,) = await children(cluster)
    assert first["metadata"]["name"] == set_manifests.compute_child_name("chat", uid, 0)
    assert first["metadata"]["labels"][inferenceset.LABEL_CREATED_BY] == "chat"
    assert first["metadata"]["ownerReferences"][0]["uid"] == uid and _ordinal(first) == 0
    assert first["resource"]["labelSelector"] == {"matchLabels": {"apps": "chat"}}
    assert inferenceset.FINALIZER in stored["metadata"]["finalizers"]
    assert stored["metadata"]["annotations"][inferenceset.ANNOTATION_REVISION] == "1"
    assert stored["status"]["replicas"] == 1 and stored["status"]["readyReplicas"] == 1
    assert stored["status"]["selector"] == "inferenceset.kaito.sh/created-by=chat"
    assert conditions(stored)[inferenceset.CONDITION_READY] == ("True", inferenceset.REASON_READY)
    # The scale subresource reports what `kubectl scale` and KEDA's HPA read (the CRD's paths).
    got = await cluster.scale(protocol.INFERENCESET, "chat", "default", replicas=1, field_manager="kubectl")
    assert got["spec"] == {"replicas": 1}
    assert got["status"] == {"replicas": 1, "selector": "inferenceset.kaito.sh/created-by=chat"}

    await scale(cluster, 3)
    await driver.sets.reconcile(SET_KEY)  # one pass creates both missing replicas
    three = sorted(await children(cluster), key=_ordinal)
    assert [_ordinal(c) for c in three] == [0, 1, 2]
    assert len({c["metadata"]["name"] for c in three}) == 3
    stored = await cluster.get(protocol.INFERENCESET, "chat")
    assert conditions(stored)[inferenceset.CONDITION_READY] == (
        "False", inferenceset.REASON_NOT_READY)
    assert "1/3 replicas are ready" in stored["status"]["conditions"][0]["message"]
    assert stored["metadata"]["annotations"][inferenceset.ANNOTATION_REVISION] == "1"  # scaling is no revision

    await _make_ready(driver, three[1])  # replica 1 ready, replica 2 not
    cluster.deletes.clear()
    await scale(cluster, 1)
    await driver.sets.reconcile(SET_KEY)
    # The not-ready replica goes first, then the newest ready one; replica 0 stays.
    assert [name for kind, name, _ in cluster.deletes if kind == "Workspace"] == [
        three[2]["metadata"]["name"], three[1]["metadata"]["name"]]
    await driver.settle()
    (survivor,) = await children(cluster)
    assert survivor["metadata"]["uid"] == first["metadata"]["uid"]
    stored = await cluster.get(protocol.INFERENCESET, "chat")
    assert (stored["status"]["replicas"], stored["status"]["readyReplicas"]) == (1, 1)
    assert conditions(stored)[inferenceset.CONDITION_READY][0] == "True"

    cluster.reset()
    await driver.sets.reconcile(SET_KEY)
    assert cluster.total == 0, cluster.writes  # steady state: zero writes


async def test_ready_replicas_never_drop_below_the_desired_count(cluster, kubelet):
    driver = SetDriver(cluster, kubelet)
    await cluster.inner.apply(make_inferenceset(replicas=2), field_manager="kubectl")
    await driver.settle()
    await scale(cluster, 3)
    await driver.sets.reconcile(SET_KEY)
    cluster.deletes.clear()
    await scale(cluster, 2)  # back down before the new replica is ready: only it goes
    await driver.sets.reconcile(SET_KEY)
    gone = [name for kind, name, _ in cluster.deletes if kind == "Workspace"]
    assert len(gone) == 1
    left = await live_children(cluster)
    assert len(left) == 2 and all(_ready(c) for c in left) and gone[0] not in {c["metadata"]["name"] for c in left}


async def test_a_child_deleted_by_hand_is_replaced(cluster, kubelet):
    driver = SetDriver(cluster, kubelet)
    await cluster.inner.apply(make_inferenceset(replicas=2), field_manager="kubectl")
    await driver.settle()
    before = {c["metadata"]["name"]: c["metadata"]["uid"] for c in await children(cluster)}
    victim = sorted(before)[0]
    await cluster.inner.delete(protocol.WORKSPACE, victim, "default")
    await driver.settle()
    after = {c["metadata"]["name"]: c["metadata"]["uid"] for c in await children(cluster)}
    assert len(after) == 2 and all(_ready(c) for c in await children(cluster))
    # The replacement takes the freed ordinal (so the same name), once the old child is gone.
    assert set(after) == set(before) and after[victim] != before[victim]
    stored = await cluster.get(protocol.INFERENCESET, "chat")
    assert stored["status"]["readyReplicas"] == 2
    events = {e["reason"] for e in (await cluster.list(protocol.EVENT, "default")).items
              if e["involvedObject"]["kind"] == "InferenceSet"}
    assert {"WorkspaceCreated", "RevisionCreated"} <= events


async def test_deleting_the_set_deletes_every_child_before_the_finalizer_goes(cluster, kubelet):
    driver = SetDriver(cluster, kubelet)
    await cluster.inner.apply(make_inferenceset(replicas=2), field_manager="kubectl")
    await driver.settle()
    await cluster.inner.delete(protocol.INFERENCESET, "chat", "default")
    await driver.sets.reconcile(SET_KEY)
    stored = await cluster.get(protocol.INFERENCESET, "chat")  # held by the finalizer while children go
    assert conditions(stored)[inferenceset.CONDITION_DELETING] == ("True", inferenceset.REASON_DELETED)
    assert all(c["metadata"].get("deletionTimestamp") for c in await children(cluster))
    for _ in range(20):
        try:
            await driver.round()
        except errors.NotFound:
            pass
        if not (await cluster.list(protocol.INFERENCESET)).items:
            break
    assert (await cluster.list(protocol.INFERENCESET)).items == []
    assert await children(cluster) == []
    assert (await cluster.list(protocol.NODECLAIM)).items == []
    assert (await cluster.list(protocol.CONTROLLER_REVISION, "default")).items == []


async def test_template_changes_make_a_revision_and_reach_only_new_children(cluster, kubelet):
    driver = SetDriver(cluster, kubelet)
    await cluster.inner.apply(make_inferenceset(replicas=1), field_manager="kubectl")
    await driver.settle()
    changed = make_inferenceset(replicas=2)
    changed["spec"]["template"]["metadata"] = {"labels": {"team": "search"}}
    changed["spec"]["template"]["inference"]["preset"]["name"] = "phi-3-mini-4k-instruct"
    await cluster.inner.apply(changed, field_manager="kubectl")
    await driver.settle()
    stored = await cluster.get(protocol.INFERENCESET, "chat")
    assert stored["metadata"]["annotations"][inferenceset.ANNOTATION_REVISION] == "2"
    revisions = await cluster.list(protocol.CONTROLLER_REVISION, "default", {inferenceset.LABEL_REVISION_NAME: "chat"})
    assert sorted(r["revision"] for r in revisions.items) == [1, 2]
    by_ordinal = {_ordinal(c): c for c in await children(cluster)}
    assert by_ordinal[0]["inference"]["preset"]["name"] == "phi-4-mini-instruct"  # not rolled out, as KAITO
    assert by_ordinal[1]["inference"]["preset"]["name"] == "phi-3-mini-4k-instruct"
    assert all(c["metadata"]["labels"]["team"] == "search" for c in by_ordinal.values())  # labels are

    # The set in the other served version: the same object, losslessly.
    alpha = await cluster.get(protocol.INFERENCESET_V1ALPHA1, "chat")
    assert alpha["apiVersion"] == "kaito.sh/v1alpha1" and alpha["spec"]["replicas"] == 2
    assert alpha["status"]["readyReplicas"] == 2


async def test_a_template_admission_refuses_creates_nothing_and_says_why(cluster, kubelet):
    driver = SetDriver(cluster, kubelet)
    bad = make_inferenceset(replicas=2)
    bad["spec"]["template"]["inference"]["preset"]["name"] = "no-such-model-anywhere"
    await cluster.inner.apply(bad, field_manager="kubectl")  # past admission: no webhook in this test
    await driver.settle()
    assert await children(cluster) == []
    stored = await cluster.get(protocol.INFERENCESET, "chat")
    status, reason = conditions(stored)[inferenceset.CONDITION_READY]
    assert (status, reason) == ("False", inferenceset.REASON_FAILED)
    assert "spec.template.inference.preset.name" in stored["status"]["conditions"][0]["message"]


async def test_the_manager_drives_sets_through_watches(cluster, kubelet):
    settings = Settings(pending_requeue_s=0.05, workers=4)
    async with Manager(cluster.inner, settings, resync_period=None), kubelet_running(kubelet, 0.05):
        await cluster.inner.apply(make_inferenceset(replicas=2), field_manager="kubectl")

        async def ready(count: int):
            stored = await cluster.inner.get(protocol.INFERENCESET, "chat")
            return ((stored.get("status") or {}).get("readyReplicas") == count
                    and len(await children(cluster.inner)) == count)

        await wait_for(lambda: ready(2), timeout=30)
        await scale(cluster.inner, 3)
        await wait_for(lambda: ready(3), timeout=30)
        await scale(cluster.inner, 1)
        await wait_for(lambda: ready(1), timeout=30)
        await cluster.inner.delete(protocol.INFERENCESET, "chat", "default")

        async def gone():
            return not (await cluster.inner.list(protocol.INFERENCESET)).items and not await children(cluster.inner)

        await wait_for(gone, timeout=30)
    await asyncio.sleep(0)


async def test_gateway_option_gives_a_vllm_set_its_pool_and_picker(cluster, kubelet):
    from kaito.controller.inferenceset.observe import GATEWAY_KINDS, INFERENCE_POOL
    from kaito.manifests import gateway

    settings = Settings(pending_requeue_s=0.01, inferenceset_gateway=True, epp_image="registry.test/epp:1")
    driver = SetDriver(cluster, kubelet, settings)
    vllm = make_inferenceset(replicas=2)
    vllm["metadata"]["annotations"] = {"kaito.sh/runtime": "vllm"}
    await cluster.inner.apply(vllm, field_manager="kubectl")
    await driver.settle()
    uid = (await cluster.get(protocol.INFERENCESET, "chat"))["metadata"]["uid"]
    (pool,) = (await cluster.list(INFERENCE_POOL, "default")).items
    assert pool["metadata"]["name"] == "chat-inferencepool"
    assert pool["spec"]["selector"] == {"matchLabels": {inferenceset.LABEL_CREATED_BY: "chat"}}
    made = {}
    for kind in GATEWAY_KINDS:
        for obj in (await cluster.list(kind, "default", {gateway.LABEL_GATEWAY: "chat"})).items:
            made[(kind.kind, obj["metadata"]["name"])] = obj
            assert obj["metadata"]["ownerReferences"][0]["uid"] == uid
    assert {k for k, _ in made} == {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Service", "Deployment",
                                    "InferencePool"}
    picker = made[("Deployment", "chat-inferencepool-epp")]
    assert picker["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.test/epp:1"
    cluster.reset()
    await driver.sets.reconcile(SET_KEY)
    assert cluster.total == 0, cluster.writes  # found as wanted: not written again

    # Not vLLM any more (the set's runtime annotation): the gateway objects go.
    await cluster.inner.apply({**vllm, "metadata": {**vllm["metadata"], "annotations": {
        "kaito.sh/runtime": "transformers"}}}, field_manager="kubectl")
    await driver.sets.reconcile(SET_KEY)
    for kind in GATEWAY_KINDS:
        assert (await cluster.list(kind, "default", {gateway.LABEL_GATEWAY: "chat"})).items == [], kind
