"""What only the local store does: collecting objects applied for a vanished owner, sharing one
file between processes, persistence, its own compaction, a locked file as `Unavailable` (and
waited for off the event loop), and watches sharing one read of which kinds changed."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kaito.cluster import errors
from kaito.cluster.local import LocalCluster
from kaito.cluster.protocol import DEPLOYMENT, SERVICE, WORKSPACE
from tests.integration.cluster.builders import make_deployment, make_service, make_workspace


async def test_an_object_applied_for_a_vanished_owner_is_collected(local_cluster) -> None:
    c = local_cluster
    ws = await c.apply(make_workspace("ws"))
    await c.delete(WORKSPACE, "ws")
    await c.apply(make_service("late", ws))  # e.g. a controller that read the owner before it went
    with pytest.raises(errors.NotFound):
        await c.get(SERVICE, "late")
    assert await c.collect_garbage() == 0


async def test_a_write_from_another_process_reaches_this_watch(local_cluster, tmp_path) -> None:
    c = local_cluster
    start = (await c.list(DEPLOYMENT)).resource_version
    script = textwrap.dedent(f"""
        import asyncio
        from kaito.cluster.local import LocalCluster
        from tests.integration.cluster.builders import make_deployment

        async def main():
            other = LocalCluster({str(c.path)!r})
            await other.apply(make_deployment("from-child", replicas=5))
            await other.close()

        asyncio.run(main())
    """)
    watching = asyncio.create_task(anext(aiter(c.watch(DEPLOYMENT, resource_version=start))))
    repo = Path(__file__).resolve().parents[3]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stderr=subprocess.PIPE, cwd=repo)
    _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    event = await asyncio.wait_for(watching, 10)
    assert (event.type, event.object["metadata"]["name"], event.object["spec"]["replicas"]) == ("ADDED", "from-child", 5)


async def test_a_watch_skips_other_kinds_yet_sees_its_own_from_another_instance(tmp_path) -> None:
    # The watches of one instance share one read of which kinds changed; writes by another
    # instance (polled) and by this one (woken) must both reach the watch of the right kind.
    c, other = LocalCluster(tmp_path / "s.db", poll_interval=0.02), LocalCluster(tmp_path / "s.db", poll_interval=0.02)
    try:
        start = (await c.list(DEPLOYMENT)).resource_version
        stream = c.watch(DEPLOYMENT, resource_version=start)
        first = asyncio.create_task(anext(aiter(stream)))
        for i in range(20):
            await (c if i % 2 else other).apply(make_service(f"s{i}"))
        await asyncio.sleep(0.1)  # several poll rounds with only Service changes
        assert not first.done()
        made = await other.apply(make_deployment("d", replicas=3))
        event = await asyncio.wait_for(first, 5)
        assert (event.type, event.object["metadata"]["resourceVersion"]) == ("ADDED", made["metadata"]["resourceVersion"])
        await c.apply(make_service("s-late"))
        mine = await c.apply(make_deployment("d", replicas=4))
        event = await asyncio.wait_for(anext(aiter(stream)), 5)
        assert (event.type, event.object["spec"]["replicas"]) == ("MODIFIED", 4)
        assert event.object["metadata"]["resourceVersion"] == mine["metadata"]["resourceVersion"]
        await stream.aclose()
    finally:
        await other.close()
        await c.close()


async def test_an_idle_watch_is_gone_once_other_kinds_compact_the_log_past_it(tmp_path) -> None:
    c = LocalCluster(tmp_path / "s.db", poll_interval=0.02, history=10)
    other = LocalCluster(tmp_path / "s.db", poll_interval=0.02, history=10)
    try:
        start = (await c.list(DEPLOYMENT)).resource_version
        stream = c.watch(DEPLOYMENT, resource_version=start)
        first = asyncio.create_task(anext(aiter(stream)))
        await asyncio.sleep(0.05)
        for i in range(40):
            await other.apply(make_service(f"s{i}"))
        await other.apply(make_deployment("d"))
        with pytest.raises(errors.Gone):
            await asyncio.wait_for(first, 5)
    finally:
        await other.close()
        await c.close()


async def test_state_survives_reopening_and_versions_keep_growing(tmp_path) -> None:
    path = tmp_path / "store.db"
    first = LocalCluster(path)
    created = await first.apply(make_deployment("a"))
    await first.close()
    second = LocalCluster(path)
    try:
        again = await second.get(DEPLOYMENT, "a")
        assert again["metadata"]["uid"] == created["metadata"]["uid"]
        changed = await second.apply(make_deployment("a", replicas=2))
        assert int(changed["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    finally:
        await second.close()


async def test_history_is_compacted_automatically(tmp_path) -> None:
    c = LocalCluster(tmp_path / "store.db", history=10)
    try:
        first = await c.apply(make_deployment("a"))
        for replicas in range(2, 40):
            await c.apply(make_deployment("a", replicas=replicas))
        with pytest.raises(errors.Gone):
            async for _ in c.watch(DEPLOYMENT, resource_version=first["metadata"]["resourceVersion"]):
                pass
        recent = str(int((await c.list(DEPLOYMENT)).resource_version) - 3)
        stream = c.watch(DEPLOYMENT, resource_version=recent)
        event = await asyncio.wait_for(anext(aiter(stream)), 5)
        assert event.type == "MODIFIED"
        await stream.aclose()
    finally:
        await c.close()


async def test_a_locked_store_is_unavailable_and_retryable(tmp_path) -> None:
    c = LocalCluster(tmp_path / "store.db", busy_timeout_s=0.05)
    blocker = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(errors.Unavailable) as caught:
            await c.apply(make_deployment("a"))
        assert errors.is_retryable(caught.value)
        blocker.execute("ROLLBACK")
        assert (await c.apply(make_deployment("a")))["metadata"]["generation"] == 1
    finally:
        blocker.close()
        await c.close()


async def test_a_write_that_finds_the_file_locked_waits_off_the_event_loop(tmp_path) -> None:
    # Writes run on the loop's thread only while the file is free; a locked file must not stall
    # the loop: the write waits on the writer thread and commits once the lock is released.
    c = LocalCluster(tmp_path / "store.db", busy_timeout_s=10.0)
    blocker = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        write = asyncio.create_task(c.apply(make_deployment("a")))
        ticks = 0
        while ticks < 5:  # the loop keeps running other tasks while the write waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not write.done()
        blocker.execute("ROLLBACK")
        made = await asyncio.wait_for(write, 10)
        assert (await c.get(DEPLOYMENT, "a"))["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
        assert c.writes == 1
        await c.apply(make_deployment("b"))  # the file is free again: the next write is immediate
        assert c.writes == 2
    finally:
        blocker.close()
        await c.close()


async def test_writes_are_counted_and_no_ops_are_free(local_cluster) -> None:
    c = local_cluster
    await c.apply(make_deployment("a"))
    status = make_deployment("a")
    status["status"] = {"readyReplicas": 1}
    await c.apply_status(status)
    before = c.writes
    for _ in range(5):
        await c.apply(make_deployment("a"))
        await c.apply_status(status)
    assert c.writes == before == 2


async def test_watch_ends_when_the_cluster_closes(tmp_path) -> None:
    c = LocalCluster(tmp_path / "store.db")
    received = []

    async def follow() -> None:
        async for event in c.watch(DEPLOYMENT):
            received.append(event)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    await c.close()
    await asyncio.wait_for(task, 2)
    assert received == []


async def test_a_cancelled_watch_always_stops_even_when_a_write_races_the_cancel(local_cluster) -> None:
    # On Python 3.11, asyncio.wait_for can swallow a cancellation that races with the awaited
    # event; a watch built on it then never ends and whoever awaits its task hangs.
    c = local_cluster
    for i in range(60):
        started = asyncio.Event()

        async def follow(started: asyncio.Event = started) -> None:
            started.set()
            async for _ in c.watch(DEPLOYMENT, resource_version="0"):
                pass

        task = asyncio.create_task(follow())
        await started.wait()
        await asyncio.sleep(0.001 * (i % 5))
        await c.apply(make_deployment("a", replicas=i + 1))
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        assert task in done, f"watch ignored its cancellation on round {i}"
