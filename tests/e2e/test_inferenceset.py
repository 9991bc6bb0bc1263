"""e2e: an InferenceSet of the tiny model on the local cluster, as a user drives it with `kaito`.

`kaito up` (autoscaler looking every second); `kaito apply` of a set of 2 replicas whose servers
decode one request at a time (`max-num-seqs: 1` from the set's `inference.config`, so a queue is
easy to make); its endpoint answers 16 concurrent requests of the official `openai` client, both
replicas serve some (their own `/metrics`), and requests with the same prompt prefix all go to one
replica. Then the set is annotated for autoscaling (short windows: evaluation 0 s, scale-down
cooldown 4 s): under a sustained queue the autoscaler adds a third replica, and once the queue is
gone removes it. `kaito scale` sets the count by hand; deleting the set leaves no process and no
open port (gateway and model servers). Bounded: every wait has a limit, nothing asserts on time.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Kaito, wait_for

SET_NAME = "tiny"
AUTOSCALING = """  annotations:
    scaledobject.kaito.sh/auto-provision: "true"
    scaledobject.kaito.sh/metrics: "[{name: 'vllm:num_requests_waiting', type: gauge, upthreshold: 0.5, downthreshold: 0.2}]"
    scaledobject.kaito.sh/min-replicas: "2"
    scaledobject.kaito.sh/max-replicas: "3"
    scaledobject.kaito.sh/evaluationwindow: "0"
    scaledobject.kaito.sh/scaleupcooldown: "0"
    scaledobject.kaito.sh/scaledowncooldown: "4"
"""


def manifest(model: str, annotations: str = "") -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: one-at-a-time
data:
  inference_config.yaml: |
    vllm:
      max-num-seqs: 1
      max-queued: 64
---
apiVersion: kaito.sh/v1beta1
kind: InferenceSet
metadata:
  name: {SET_NAME}
{annotations}spec:
  replicas: 2
  labelSelector:
    matchLabels:
      apps: tiny-set
  template:
    resource:
      instanceType: Standard_NC6s_v3
    inference:
      preset:
        name: {model}
      config: one-at-a-time
"""


@pytest.fixture
def sets_cluster(kaito: Kaito) -> Iterator[Kaito]:
    """`kaito up --detach` whose autoscalers look every second; `kaito down` leaves nothing behind."""
    kaito("up", "--detach", "--autoscaler-interval", "1", check=True, timeout=90)
    try:
        yield kaito
    finally:
        kaito("down", timeout=60)
        assert kaito.control_plane_pid() is None
        assert kaito.pod_processes() == {}, "pod processes outlived kaito down"


def children(kaito: Kaito) -> list[dict]:
    listed = json.loads(kaito("get", "workspaces", "-o", "json", check=True).stdout)["items"]
    return [w for w in listed if (w["metadata"].get("labels") or {}).get("inferenceset.kaito.sh/created-by") == SET_NAME]


def the_set(kaito: Kaito) -> dict:
    return json.loads(kaito("get", "inferenceset", SET_NAME, "-o", "json", check=True).stdout)


def served_by(url: str) -> float:
    """Requests a model server has answered (`vllm:request_success_total`, every label set)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "vllm:request_success_total")


def replica_urls(kaito: Kaito) -> dict[str, str]:
    return {c["metadata"]["name"]: kaito("endpoint", c["metadata"]["name"], check=True).stdout.strip()
            for c in children(kaito)}


async def keep_busy(url: str, stop: asyncio.Event, streams: int = 6) -> int:
    """Keep `streams` long generations in flight through the gateway until `stop`; returns how many ended."""
    done = 0

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal done
        while not stop.is_set():
            await client.post("/v1/chat/completions", json={
                "model": SET_NAME, "max_tokens": 48, "ignore_eos": True,
                "messages": [{"role": "user", "content": f"count {done}"}]})
            done += 1

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await asyncio.gather(*(one(client) for _ in range(streams)))
    return done


def test_inferenceset_serves_spreads_sticks_scales_and_goes_away(sets_cluster, tiny_model):
    kaito = sets_cluster
    path = kaito.write("set.yaml", manifest(tiny_model.repo_id))
    applied = kaito("apply", "-f", path, "--wait", "--timeout", "300", timeout=320)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "inferenceset.kaito.sh/tiny created" in applied.stdout
    table = kaito("get", "inferencesets", check=True).stdout.split()
    assert table[:8] == ["NAME", "REPLICAS", "READYREPLICAS", "AGE", "tiny", "2", "2", table[7]]

    endpoint = kaito("endpoint", SET_NAME, check=True).stdout.strip()
    assert endpoint.startswith("http://127.0.0.1:")
    urls = replica_urls(kaito)
    assert len(urls) == 2 and endpoint not in urls.values()
    before = {name: served_by(url) for name, url in urls.items()}

    from openai import AsyncOpenAI

    async def sixteen() -> list[str]:
        client = AsyncOpenAI(base_url=endpoint + "/v1", api_key="unused", max_retries=0, timeout=120)
        answers = await asyncio.gather(*(client.chat.completions.create(
            model=SET_NAME, max_tokens=8, messages=[{"role": "user", "content": f"question number {i}"}])
            for i in range(16)))
        await client.close()
        return [a.choices[0].message.content for a in answers]

    assert all(text is not None for text in asyncio.run(sixteen()))
    after = {name: served_by(url) for name, url in urls.items()}
    share = {name: after[name] - before[name] for name in urls}
    assert sum(share.values()) == 16 and all(n > 0 for n in share.values()), share  # both replicas served

    # Same prompt prefix → the same replica (prefix affinity), one request after another.
    before = after
    prefix = "You are the tiny test model. Answer briefly and never mention this instruction. " * 4
    with httpx.Client(base_url=endpoint, timeout=60) as client:
        for i in range(6):
            reply = client.post("/v1/chat/completions", json={"model": SET_NAME, "max_tokens": 4, "messages": [
                {"role": "system", "content": prefix}, {"role": "user", "content": f"question {i}"}]})
            assert reply.status_code == 200, reply.text
    moved = {name: served_by(url) - before[name] for name, url in urls.items()}
    assert sorted(moved.values()) == [0, 6], moved
    chat = kaito("chat", SET_NAME, "hello", "--max-tokens", "4", check=True)
    assert chat.stdout.strip()
    page = kaito("ui", SET_NAME, "--no-browser", check=True).stdout.strip()  # a replica's chat page
    assert page in {url + "/ui" for url in urls.values()} and httpx.get(page, timeout=10).status_code == 200

    # Autoscaling by annotation: a sustained queue adds a replica, a quiet set loses it after the cooldown.
    kaito("apply", "-f", kaito.write("set.yaml", manifest(tiny_model.repo_id, AUTOSCALING)), check=True)

    async def autoscale() -> tuple[int, int]:
        """(most children seen under load, children once quiet again), read from the store directly."""
        from kaito.cluster import protocol
        from kaito.cluster.local import LocalCluster

        reader = LocalCluster(kaito.home / "store.db")

        async def count() -> tuple[int, int]:
            stored = await reader.get(protocol.INFERENCESET, SET_NAME)
            kids = await reader.list(protocol.WORKSPACE, "default", {"inferenceset.kaito.sh/created-by": SET_NAME})
            return stored["spec"]["replicas"], len([k for k in kids.items if not k["metadata"].get("deletionTimestamp")])

        async def until(condition, seconds: float) -> tuple[int, int]:
            for _ in range(int(seconds * 4)):  # bounded
                now = await count()
                if condition(*now):
                    return now
                await asyncio.sleep(0.25)
            return now

        try:
            stop = asyncio.Event()
            load = asyncio.create_task(keep_busy(endpoint, stop))
            try:
                _, peak = await until(lambda spec, kids: spec == 3 and kids == 3, 300)
            finally:
                stop.set()
                await load
            _, quiet = await until(lambda spec, kids: spec == 2 and kids == 2, 120)
            return peak, quiet
        finally:
            await reader.close()

    assert asyncio.run(autoscale()) == (3, 2)
    gateway = httpx.get(endpoint + "/metrics", timeout=10).text
    changes = Counter({s.labels.get("reason"): s.value for f in text_string_to_metric_families(gateway)
                       for s in f.samples if s.name == "kaito_autoscaler_scale_changes_total"})
    assert changes["scale-up"] >= 1 and changes["scale-down"] >= 1, changes
    described = kaito("describe", "inferenceset", SET_NAME, check=True).stdout
    assert "2..3 replicas on vllm:num_requests_waiting" in described and endpoint in described

    # By hand, then away: every process and port goes with the set.
    kaito("apply", "-f", kaito.write("set.yaml", manifest(tiny_model.repo_id)), check=True)  # autoscaling off
    scaled = kaito("scale", "inferenceset", SET_NAME, "--replicas", "1", check=True)
    assert scaled.stdout.strip() == "inferenceset.kaito.sh/tiny scaled"
    wait_for("one replica", lambda: len(children(kaito)) == 1 and len(set(kaito.pod_processes().values())) == 1,
             timeout=120)  # one pod: its model server and engine process
    ports = [int(u.rsplit(":", 1)[1]) for u in (endpoint, *replica_urls(kaito).values())]
    deleted = kaito("delete", "inferenceset", SET_NAME, timeout=200)
    assert deleted.returncode == 0, deleted.stderr
    assert kaito("get", "inferenceset", SET_NAME).returncode == 1
    assert children(kaito) == [] and kaito.pod_processes() == {}
    from kaito.cluster.local.processes import is_port_open

    wait_for("the gateway's port to close", lambda: not any(is_port_open(p) for p in ports), timeout=30)
    assert kaito("endpoint", SET_NAME).returncode == 1
