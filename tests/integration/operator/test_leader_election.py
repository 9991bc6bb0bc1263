"""Two `kaito operator` processes, one Lease: one reconciles; kill it and the other finishes the job."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter

from kaito.cluster import errors, protocol
from tests.integration.controller.harness import conditions, make_workspace
from tests.integration.operator.conftest import FAST_LEASE, NAMESPACE
from tests.support.kubelet import FakeKubelet


async def wait_for(predicate, timeout=30.0, what="condition"):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not reached in {timeout}s")


async def lease_holder(cluster) -> str:
    try:
        lease = await cluster.get(protocol.LEASE, "kaito-operator-leader", NAMESPACE)
    except errors.NotFound:
        return ""
    return (lease.get("spec") or {}).get("holderIdentity") or ""


async def test_only_the_leader_reconciles_and_a_standby_takes_over(env):
    cluster = env.cluster
    a = await env.start_operator("op-a", "--leader-elect", "--log-level", "debug", *FAST_LEASE)
    b = await env.start_operator("op-b", "--leader-elect", "--log-level", "debug", *FAST_LEASE)
    await env.wait_serving(a)
    await env.wait_serving(b)

    async def has_leader():
        return await lease_holder(cluster) in ("op-a", "op-b")

    await wait_for(has_leader, what="a leader")
    leader, standby = (a, b) if await lease_holder(cluster) == "op-a" else (b, a)

    # The leader starts the work: a NodeClaim for the Workspace's missing GPU node.
    await cluster.apply(make_workspace("ws1"), field_manager="kubectl")

    async def claim_made():
        return len((await cluster.list(protocol.NODECLAIM)).items) == 1

    await wait_for(claim_made, what="the leader's NodeClaim")

    async def leader_counted():  # the metric is recorded when the reconcile that made the claim ends
        return await leader.reconciles() > 0

    await wait_for(leader_counted, what="the leader's reconcile metric")
    assert await standby.reconciles() == 0  # the standby watches nothing and writes nothing
    assert "kaito_leader_election_is_leader 0.0" in await standby.metrics()

    # Kill the leader mid-way (no chance to release the Lease); the node comes up meanwhile.
    leader.proc.send_signal(signal.SIGKILL)
    await leader.proc.wait()
    kubelet = FakeKubelet(cluster)
    await kubelet.step()

    async def taken_over():
        return await lease_holder(cluster) == standby.name

    await wait_for(taken_over, what="the standby taking the Lease")

    async def converged():
        await kubelet.step()
        ws = await cluster.get(protocol.WORKSPACE, "ws1", "default")
        return conditions(ws).get("WorkspaceSucceeded", ("",))[0] == "True"

    await wait_for(converged, what="the Workspace converging under the new leader")
    assert await standby.reconciles() > 0

    async def counted_ready():  # per-condition Workspace counts follow the watch
        return 'kaito_workspaces{condition="WorkspaceSucceeded",status="True"} 1.0' in await standby.metrics()

    await wait_for(counted_ready, what="the Workspace counted per condition")
    lines = [json.loads(line) for op in (a, b) for line in op.log.read_text().splitlines() if line.strip()]
    tagged = [line for line in lines if line.get("workspace") == "ws1"]
    assert tagged and all(line["namespace"] == "default" for line in tagged)  # structured, with the Workspace
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    lease = await cluster.get(protocol.LEASE, "kaito-operator-leader", NAMESPACE)
    assert lease["spec"]["leaseTransitions"] >= 1

    # Nothing was created twice across the handover: one ADDED per object, one NodeClaim.
    added = Counter((key, ns, obj["metadata"]["name"]) for _, key, ns, typ, obj in env.emulator.history
                    if typ == "ADDED")
    assert added and max(added.values()) == 1, [k for k, n in added.items() if n > 1]
    assert len((await cluster.list(protocol.NODECLAIM)).items) == 1
    assert len((await cluster.list(protocol.DEPLOYMENT, "default")).items) == 1

    # A steady state under the new leader makes no writes (no fighting over objects).
    seen = len(env.emulator.history)
    await asyncio.sleep(1.0)
    later = [(key, obj["metadata"]["name"]) for _, key, _, _, obj in env.emulator.history[seen:]]
    assert [k for k in later if not k[0].endswith("/Lease")] == []  # only Lease renewals


async def test_sigterm_finishes_and_releases_the_lease(env):
    op = await env.start_operator("op-term", "--leader-elect", *FAST_LEASE)
    await env.wait_serving(op)

    async def leading():
        return await lease_holder(env.cluster) == "op-term"

    await wait_for(leading, what="leadership")
    assert await op.probe("/readyz") == 200
    op.proc.send_signal(signal.SIGTERM)
    rc = await asyncio.wait_for(op.proc.wait(), timeout=10.0)  # the bound: gone within 10 s
    assert rc == 0, op.log.read_text()
    assert await lease_holder(env.cluster) == ""  # released: a standby may start at once
