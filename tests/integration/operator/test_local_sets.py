"""The local control plane's InferenceSet wiring over a real store: one gateway per set fed from the
children's pods, the autoscaling policy from the set's annotations, `spec.replicas` written through
the scale subresource, scale from zero woken by a request, and the port closed when the set goes.

The model servers are fakes (`tests.support.fake_replicas`) reached at the local ports recorded on
Pods the test writes as the runner would; the whole path with real model processes is in
`tests/e2e/test_inferenceset.py`.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest_asyncio

from kaito.api import autoscaling, inferenceset, labels
from kaito.cluster import protocol
from kaito.cluster.local import LocalCluster, runner
from kaito.cluster.local.processes import is_port_open
from kaito.operator.local_sets import LocalInferenceSets
from kaito.operator.serving.policy import MetricRule
from kaito.operator.set_policy import AUTOSCALER_FIELD_MANAGER, ClusterScaleTarget, build_scale_policy
from tests.integration.controller.set_harness import make_inferenceset
from tests.support.fake_replicas import FakeReplica

GUARD_S = 20


@pytest_asyncio.fixture(loop_scope="function")
async def store(tmp_path):
    cluster = LocalCluster(tmp_path / "store.db", poll_interval=0.02)
    yield cluster
    await cluster.close()


async def until(condition) -> None:
    async with asyncio.timeout(GUARD_S):
        while not await condition():
            await asyncio.sleep(0.02)


async def add_replica(store, set_name: str, child: str, fake: FakeReplica | None, *, ready: bool = True) -> None:
    """A child Workspace and its pod, as the controller and the runner would write them."""
    await store.apply({"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace",
                       "metadata": {"name": child, "namespace": "default",
                                    "labels": {inferenceset.LABEL_CREATED_BY: set_name}},
                       "resource": {"labelSelector": {"matchLabels": {"apps": set_name}}},
                       "inference": {"preset": {"name": "phi-4-mini-instruct"}}}, field_manager="kaito")
    await set_pod(store, set_name, child, fake, ready=ready)


async def set_pod(store, set_name: str, child: str, fake: FakeReplica | None, *, ready: bool) -> None:
    port = fake.url.rsplit(":", 1)[1] if fake is not None else "1"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{child}-pod", "namespace": "default",
                        "labels": {labels.LABEL_WORKSPACE_NAME: child, inferenceset.LABEL_CREATED_BY: set_name},
                        "annotations": {runner.ANNOTATION_PORTS: json.dumps({"5000": int(port)})}}}
    await store.apply(pod, field_manager="kubelet")
    await store.apply_status({**pod, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}, field_manager="kubelet")


async def test_a_gateway_per_set_fed_from_its_childrens_pods(store):
    fakes = [await FakeReplica(name=f"f{i}").start() for i in range(2)]
    sets = LocalInferenceSets(store)
    recorded: list[dict] = []
    sets.on_change = recorded.append
    task = asyncio.create_task(sets.run())
    try:
        await store.apply(make_inferenceset(replicas=2), field_manager="kubectl")
        await add_replica(store, "chat", "chat-a", fakes[0])
        await add_replica(store, "chat", "chat-b", fakes[1], ready=False)

        async def listed():
            ep = sets.sets.get(("default", "chat"))
            return ep is not None and [(r.name, r.ready) for r in ep.pool.all()] == [("chat-a", True), ("chat-b", False)]

        await until(listed)
        url = sets.endpoints()["default/chat"]
        assert recorded[-1] == {"default/chat": url}
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            models = (await client.get("/v1/models")).json()
            assert [m["id"] for m in models["data"]] == ["chat"]  # the set's one model name
            answers = [(await client.post("/v1/chat/completions", json={"model": "chat", "n": i})).json()
                       for i in range(4)]
        assert {a["replica"] for a in answers} == {"f0"}  # only the ready replica serves
        await set_pod(store, "chat", "chat-b", fakes[1], ready=True)

        async def both():
            return len(sets.sets[("default", "chat")].pool.ready()) == 2

        await until(both)
        port = int(url.rsplit(":", 1)[1])
        await store.delete(protocol.INFERENCESET, "chat", "default")

        async def stopped():
            return "default/chat" not in sets.endpoints()

        await until(stopped)
        assert not is_port_open(port) and recorded[-1] == {}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for fake in fakes:
            await fake.stop()


async def test_scale_target_writes_replicas_through_the_scale_subresource(store):
    await store.apply(make_inferenceset(replicas=1), field_manager="kaito-cli")
    await store.apply_status({"apiVersion": "kaito.sh/v1beta1", "kind": "InferenceSet",
                              "metadata": {"name": "chat", "namespace": "default"},
                              "status": {"replicas": 1, "readyReplicas": 1}}, field_manager="kaito")
    target = ClusterScaleTarget(store, "default", "chat")
    scale = await target.read_scale()
    assert (scale.spec_replicas, scale.ready_replicas) == (1, 1)
    await target.set_replicas(3)
    stored = await store.get(protocol.INFERENCESET, "chat")
    assert stored["spec"]["replicas"] == 3 and stored["spec"]["template"] == make_inferenceset()["spec"]["template"]
    # `kaito apply` of the same file without `replicas` leaves the autoscaler's count alone.
    await store.apply(make_inferenceset(replicas=None), field_manager="kaito-cli")
    assert (await store.get(protocol.INFERENCESET, "chat"))["spec"]["replicas"] == 3
    assert AUTOSCALER_FIELD_MANAGER == "kaito-autoscaler"


def test_annotations_map_onto_the_local_policy():
    notes = {autoscaling.AUTO_PROVISION: "true",
             autoscaling.METRICS: "[{name: 'vllm:num_requests_waiting', type: gauge, upthreshold: 4, downthreshold: 1},"
                                  " {name: 'vllm:time_to_first_token_seconds', type: histogram, upthreshold: 2,"
                                  " downthreshold: 0.5, metriccachewindow: 60}]",
             autoscaling.MIN_REPLICAS: "2", autoscaling.MAX_REPLICAS: "5", autoscaling.EVALUATION_WINDOW: "10",
             autoscaling.SCALE_UP_COOLDOWN: "20", autoscaling.SCALE_DOWN_COOLDOWN: "30"}
    policy = build_scale_policy(notes)
    assert policy.metrics == (
        MetricRule(name="vllm:num_requests_waiting", kind="gauge", up_threshold=4, down_threshold=1,
                   cache_window_s=300.0),
        MetricRule(name="vllm:time_to_first_token_seconds", kind="histogram", up_threshold=2, down_threshold=0.5,
                   cache_window_s=60.0))
    assert (policy.min_replicas, policy.max_replicas) == (2, 5)
    assert (policy.evaluation_window_s, policy.scale_up_cooldown_s, policy.scale_down_cooldown_s) == (10, 20, 30)
    assert build_scale_policy({**notes, autoscaling.MIN_REPLICAS: "0"}).min_replicas == 0  # scale to zero
    limited = {k: v for k, v in notes.items() if k != autoscaling.MAX_REPLICAS}
    assert build_scale_policy(limited, node_count_limit=8, target_node_count=2).max_replicas == 4
    assert build_scale_policy({**notes, autoscaling.AUTO_PROVISION: "false"}) is None
    assert build_scale_policy({**notes, autoscaling.MAX_REPLICAS: "1"}) is None  # wrong: admission says why


async def test_a_request_to_a_set_at_zero_wakes_a_replica(store):
    notes = {autoscaling.AUTO_PROVISION: "true", autoscaling.MIN_REPLICAS: "0", autoscaling.MAX_REPLICAS: "2",
             autoscaling.METRICS: "[{name: 'vllm:num_requests_waiting', type: gauge, upthreshold: 4, downthreshold: 1}]"}
    zero = make_inferenceset(replicas=0)
    zero["metadata"]["annotations"] = notes
    await store.apply(zero, field_manager="kubectl")
    fake = await FakeReplica(name="woken").start()
    sets = LocalInferenceSets(store, interval_s=60)  # only the request's wake-up can explain a tick
    task = asyncio.create_task(sets.run())
    try:
        async def serving():
            ep = sets.sets.get(("default", "chat"))
            return ep is not None and ep.autoscaler is not None

        await until(serving)
        url = sets.endpoints()["default/chat"]
        async with httpx.AsyncClient(base_url=url, timeout=GUARD_S) as client:
            request = asyncio.create_task(client.post("/v1/chat/completions", json={"model": "chat"}))

            async def woken():
                return (await store.get(protocol.INFERENCESET, "chat"))["spec"]["replicas"] == 1

            await until(woken)  # the held request asked the autoscaler, which wrote spec.replicas
            assert not request.done()
            await add_replica(store, "chat", "chat-a", fake)  # the controller and runner's part
            answer = await request
        assert answer.status_code == 200 and answer.json()["replica"] == "woken"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()
