"""The manager end to end: watches → queue → workers, steady state at scale, watch recovery."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from kaito.cluster import errors, protocol
from kaito.controller.manager import Manager
from kaito.controller.observe import WorkspaceKey
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings
from kaito.controller.watching import Watch
from kaito.controller.workspace_watches import WorkspaceController, owner_key
from tests.integration.controller.harness import CountingCluster, conditions, make_workspace
from tests.support.kubelet import FakeKubelet

SETTINGS = Settings(pending_requeue_s=0.05, workers=5)


@contextlib.asynccontextmanager
async def kubelet_running(kubelet: FakeKubelet, period: float = 0.02):
    async def loop():
        while True:
            await kubelet.step()
            await asyncio.sleep(period)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(predicate, timeout=20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def succeeded(cluster, names, namespace="default"):
    """All named Workspaces are WorkspaceSucceeded=True (one list, not one read per Workspace)."""
    found = {ws["metadata"]["name"]: ws for ws in (await cluster.list(protocol.WORKSPACE, namespace)).items}
    return all(
        name in found and conditions(found[name]).get("WorkspaceSucceeded", ("",))[0] == "True"
        for name in names
    )


def test_owner_key_from_reference_or_labels():
    owned = {
        "metadata": {
            "namespace": "ns",
            "ownerReferences": [{"kind": "Workspace", "name": "a", "controller": True}],
        }
    }
    assert owner_key(owned) == WorkspaceKey("ns", "a")
    claim = {"metadata": {"labels": {"kaito.sh/workspace": "b", "kaito.sh/workspacenamespace": "ns2"}}}
    assert owner_key(claim) == WorkspaceKey("ns2", "b")
    assert owner_key({"metadata": {"labels": {"kaito.sh/workspace": "c"}}}) is None


async def test_manager_drives_workspaces_to_success_and_deletion(local_cluster):
    kubelet = FakeKubelet(local_cluster)
    async with Manager(local_cluster, SETTINGS, resync_period=None) as manager, kubelet_running(kubelet):
        for i in range(3):
            await local_cluster.apply(make_workspace(f"ws{i}"), field_manager="kubectl")
        await wait_for(lambda: succeeded(local_cluster, ["ws0", "ws1", "ws2"]))
        assert len((await local_cluster.list(protocol.NODECLAIM)).items) == 3

        await local_cluster.delete(protocol.WORKSPACE, "ws1", "default")

        async def ws1_gone():
            try:
                await local_cluster.get(protocol.WORKSPACE, "ws1", "default")
                return False
            except errors.NotFound:
                return True

        await wait_for(ws1_gone)
        assert len((await local_cluster.list(protocol.NODECLAIM)).items) == 2
        assert not manager.errors


async def test_full_resync_of_200_ready_workspaces_makes_zero_writes(local_cluster):
    names = [f"w{i:03d}" for i in range(200)]
    for name in names:
        await local_cluster.apply(make_workspace(name), field_manager="kubectl")
    kubelet = FakeKubelet(local_cluster)
    async with (
        Manager(local_cluster, Settings(pending_requeue_s=0.2, workers=8), resync_period=None),
        kubelet_running(kubelet, 0.05),
    ):
        await wait_for(lambda: succeeded(local_cluster, names), timeout=120)

    counting = CountingCluster(local_cluster)
    reconciler = Reconciler(counting, SETTINGS)
    async with Manager(counting, SETTINGS, reconciler=reconciler, resync_period=None) as manager:
        await manager.wait_idle(settle=0.2)  # start-up lists everything: a full pass
        assert reconciler.stats.reconciles >= 200
        assert manager.resync() == 200
        await manager.wait_idle(settle=0.2)
        assert reconciler.stats.reconciles >= 400
    assert counting.total == 0, counting.writes


class GoneOnce:
    """Wraps a Cluster: the first Workspace watch fails with 410 Gone after its first event."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.gone_sent = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def watch(self, kind, namespace=None, labels=None, resource_version=None):
        if kind == protocol.WORKSPACE and not self.gone_sent:
            self.gone_sent = True
            raise errors.Gone("resourceVersion too old")
        async for event in self.inner.watch(kind, namespace, labels, resource_version):
            yield event


async def test_watch_gone_relists_and_continues(local_cluster):
    cluster = GoneOnce(local_cluster)
    kubelet = FakeKubelet(local_cluster)
    async with Manager(cluster, SETTINGS, resync_period=None) as manager, kubelet_running(kubelet):
        await wait_for(lambda: asyncio.sleep(0, cluster.gone_sent))
        await local_cluster.apply(make_workspace("late"), field_manager="kubectl")
        await wait_for(lambda: succeeded(local_cluster, ["late"]))
        assert manager.relists.get("Workspace") == 1


async def test_byo_node_labelled_later_wakes_the_workspace(local_cluster):
    kubelet = FakeKubelet(local_cluster)
    settings = Settings(provisioner="byo", pending_requeue_s=3600, workers=2)  # only events can wake it
    async with Manager(local_cluster, settings, resync_period=None), kubelet_running(kubelet):
        await local_cluster.apply(make_workspace("byo"), field_manager="kubectl")

        async def pending():
            ws = await local_cluster.get(protocol.WORKSPACE, "byo", "default")
            return conditions(ws).get("ResourceReady", ("",))[0] == "False"

        await wait_for(pending)
        await kubelet.add_node("gpu-node", {"apps": "byo"})
        await wait_for(lambda: succeeded(local_cluster, ["byo"]))


async def test_workspace_observers_see_every_event_and_a_failing_one_is_contained(local_cluster):
    seen: list[tuple[str, str]] = []

    def broken(event):
        raise RuntimeError("observer bug")

    manager = Manager(local_cluster, SETTINGS, resync_period=None,
                      on_workspace_event=[broken, lambda e: seen.append((e.type, e.object["metadata"]["name"]))])
    kubelet = FakeKubelet(local_cluster)
    async with manager, kubelet_running(kubelet):
        await local_cluster.apply(make_workspace("watched"), field_manager="kubectl")
        await wait_for(lambda: succeeded(local_cluster, ["watched"]))
        await local_cluster.delete(protocol.WORKSPACE, "watched", "default")
        await wait_for(lambda: asyncio.sleep(0, ("DELETED", "watched") in seen))
        # The broken observer did not stop the watch: no re-list, and the Workspace still reconciled.
        assert manager.relists == {}
        assert ("ADDED", "watched") in seen and ("MODIFIED", "watched") in seen


async def test_abort_cancels_workers_and_watches_without_waiting(local_cluster):
    manager = Manager(local_cluster, SETTINGS, resync_period=None)
    await manager.start()
    assert {t.get_name() for t in manager.tasks} >= {"workers", "watch-Workspace"}
    manager.abort()
    await asyncio.gather(*manager.tasks, return_exceptions=True)
    assert all(t.cancelled() for t in manager.tasks)


def _ws_event(type_, name, match_labels, namespace="default"):
    return protocol.WatchEvent(
        type_,
        {
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "resource": {"labelSelector": {"matchLabels": match_labels}},
        },
    )


async def _drain(queue) -> set:
    keys = set()
    while queue.stats().queued:
        key = await queue.get()
        queue.done(key)
        keys.add(key)
    return keys


async def test_node_event_enqueues_exactly_the_workspaces_whose_selector_it_matches(local_cluster):
    manager = Manager(local_cluster, SETTINGS)
    workspaces = manager.controllers[0]
    assert isinstance(workspaces, WorkspaceController)
    kinds = {kind.key: watches for kind, watches in manager.watches_by_kind()}

    def on_workspace(event):
        manager.dispatch(protocol.WORKSPACE, kinds[protocol.WORKSPACE.key], event)

    def on_node(event):
        manager.dispatch(protocol.NODE, kinds[protocol.NODE.key], event)

    on_workspace(_ws_event("ADDED", "a", {"pool": "x"}))
    on_workspace(_ws_event("ADDED", "b", {"pool": "x", "gpu": "h100"}))
    on_workspace(_ws_event("ADDED", "c", {"pool": "y"}))
    on_workspace(_ws_event("ADDED", "d", {}))  # an empty selector matches no node
    on_workspace(_ws_event("ADDED", "e", {"pool": ["not", "a", "string"]}))  # malformed: never matches
    await _drain(manager.queue)

    node = {"metadata": {"name": "n1", "labels": {"pool": "x", "zone": "1"}}}
    on_node(protocol.WatchEvent("ADDED", node))
    assert await _drain(manager.queue) == {WorkspaceKey("default", "a")}

    node["metadata"]["labels"]["gpu"] = "h100"
    on_node(protocol.WatchEvent("MODIFIED", node))
    assert await _drain(manager.queue) == {WorkspaceKey("default", "a"), WorkspaceKey("default", "b")}

    # A changed selector is re-indexed; a deleted Workspace is no longer woken by nodes.
    on_workspace(_ws_event("MODIFIED", "c", {"zone": "1"}))
    on_workspace(_ws_event("DELETED", "a", {"pool": "x"}))
    await _drain(manager.queue)
    on_node(protocol.WatchEvent("MODIFIED", node))
    assert await _drain(manager.queue) == {WorkspaceKey("default", "b"), WorkspaceKey("default", "c")}
    assert manager.resync() == 4  # b, c, d, e are still known


@dataclasses.dataclass(frozen=True, order=True)
class NoteKey:
    namespace: str
    name: str


class NoteKind:
    """A second kind on the shared queue: ConfigMaps ("notes"), also woken by the Workspace they name."""

    name = "note"
    kind = protocol.CONFIGMAP
    key_type = NoteKey

    def __init__(self, fail_on: str | None = None) -> None:
        self.reconciled: list[NoteKey] = []
        self.fail_on = fail_on
        self.reconciler = self
        self.known: set[NoteKey] = set()

    async def reconcile(self, key: NoteKey) -> float | None:
        self.reconciled.append(key)
        if key.name == self.fail_on:
            raise KeyError("note bug")
        return None

    def watches(self, *, provisions_nodes: bool) -> list[Watch]:
        def own(event):
            meta = event.object["metadata"]
            key = NoteKey(meta.get("namespace", "default"), meta["name"])
            self.known.add(key)
            return [key]

        def by_workspace(event):  # a Workspace wakes the note of the same name + "-note"
            meta = event.object["metadata"]
            return [NoteKey(meta.get("namespace", "default"), meta["name"] + "-note")]

        return [Watch(kind=protocol.CONFIGMAP, keys_for=own), Watch(kind=protocol.WORKSPACE, keys_for=by_workspace)]

    def known_keys(self):
        return sorted(self.known)


async def test_several_kinds_share_the_queue_and_each_watch_stream(local_cluster):
    notes = NoteKind(fail_on="broken")
    counting = CountingCluster(local_cluster)
    workspaces = WorkspaceController(counting, SETTINGS)
    manager = Manager(counting, dataclasses.replace(SETTINGS, bug_retry_limit=1), resync_period=None,
                      controllers=[workspaces, notes])
    kubelet = FakeKubelet(local_cluster)
    async with manager, kubelet_running(kubelet):
        # One watch stream per resource kind, even though both kinds watch Workspaces.
        names = [t.get_name() for t in manager.tasks]
        assert names.count("watch-Workspace") == 1 and "watch-ConfigMap" in names
        await local_cluster.apply(make_workspace("same"), field_manager="kubectl")
        await local_cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "same", "namespace": "default"}}, field_manager="kubectl")
        await local_cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "broken", "namespace": "default"}}, field_manager="kubectl")
        await wait_for(lambda: succeeded(local_cluster, ["same"]))
        await wait_for(lambda: asyncio.sleep(0, any(f.gave_up for f in manager.errors)))
        await manager.wait_idle(settle=0.2)
    # A key goes to the reconciler of its kind: the ConfigMap "same" never reached the Workspace one.
    assert NoteKey("default", "same") in notes.reconciled
    assert NoteKey("default", "same-note") in notes.reconciled  # mapped from the Workspace's events
    assert manager.resync() >= 3
    failure = next(f for f in manager.errors if f.key == NoteKey("default", "broken"))
    assert failure.controller == "note"
    assert all(f.controller == "note" for f in manager.errors)
    events = (await local_cluster.list(protocol.EVENT, "default")).items
    bug = [e for e in events if e["reason"] == "ReconcileError"]
    assert bug and all(e["involvedObject"]["kind"] == "ConfigMap" and e["involvedObject"]["name"] == "broken"
                       for e in bug)
    assert any("until the ConfigMap changes" in e["message"] for e in bug)
