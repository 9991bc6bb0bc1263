"""The local provisioner and pod runner against a real local store, with real (tiny) processes.

No model here: the containers run `python -c` scripts under our runtime image's name, which is
enough to check Nodes from NodeClaims, ports, readiness, Job exit codes, ConfigMap files and env,
restarts with back-off, foreign images, and that deleting a workload stops its process.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
import pytest_asyncio

from kaito.cluster import errors, protocol
from kaito.cluster.local import LocalCluster, processes
from kaito.cluster.local.provisioner import LocalProvisioner, MachineFacts
from kaito.cluster.local.runner import LocalRunner
from tests.integration.cluster.runner_kit import (
    IMAGE,
    SERVER,
    is_runtime,
    runner_env,
    settled,
    until,
    workload,
)


@pytest_asyncio.fixture(loop_scope="function")
async def env(tmp_path):
    async with runner_env(tmp_path) as running:
        yield running


async def test_nodeclaim_gets_a_ready_local_node_and_claim_status(env):
    cluster, _, _ = env
    node = await cluster.get(protocol.NODE, "local-c-0")
    assert node["metadata"]["labels"]["apps"] == "t"
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
    claim = await cluster.get(protocol.NODECLAIM, "c-0")
    assert claim["status"]["nodeName"] == "local-c-0"
    assert "cannot be honoured by the local cluster" in claim["status"]["conditions"][0]["message"]


async def test_deleted_nodeclaim_loses_its_node_and_finalizer(env):
    cluster, _, _ = env
    prov = LocalProvisioner(cluster, MachineFacts("host", 2, 2**30))
    await cluster.delete(protocol.NODECLAIM, "c-0")
    assert (await cluster.get(protocol.NODECLAIM, "c-0"))["metadata"]["deletionTimestamp"]  # held by the finalizer
    await prov.sync()
    with pytest.raises(errors.NotFound):
        await cluster.get(protocol.NODE, "local-c-0")
    with pytest.raises(errors.NotFound):
        await cluster.get(protocol.NODECLAIM, "c-0")


async def test_deployment_serves_on_a_local_port_and_stops_when_deleted(env):
    cluster, _, home = env
    container = {"name": "srv", "image": IMAGE, "command": ["python", "-c", SERVER], "args": ["--port=5000"],
                 "ports": [{"containerPort": 5000}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 5000}}}
    await cluster.apply(workload("Deployment", "srv", [container], replicas=1))

    async def ready():
        st = (await cluster.get(protocol.DEPLOYMENT, "srv")).get("status") or {}
        return st.get("readyReplicas") == 1 and st

    status = await until("the Deployment to be ready", ready)
    assert status["availableReplicas"] == 1 and status["updatedReplicas"] == 1
    pod = (await cluster.list(protocol.POD, "default", labels={"kaito.sh/workspace": "srv"})).items[0]
    port = json.loads(pod["metadata"]["annotations"]["kaito.sh/local-ports"])["5000"]
    assert port != 5000 and processes.is_port_open(port)
    assert pod["spec"]["nodeName"] == "local-c-0" and pod["status"]["phase"] == "Running"
    assert len(processes.find_strays(home)) == 1

    await cluster.delete(protocol.DEPLOYMENT, "srv", "default")
    await until("the process to stop", lambda: settled(not processes.find_strays(home)))
    assert not processes.is_port_open(port)

    async def pod_gone():
        return not (await cluster.list(protocol.POD, "default")).items

    await until("the Pod object to go", pod_gone)


async def test_job_exit_codes_become_job_status(env):
    cluster, _, home = env
    ok = {"name": "ok", "image": IMAGE, "command": ["python", "-c",
          "import os; open('/mnt/out/result', 'w').write(os.environ['GREETING'] + open('/mnt/config/k').read())"],
          "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}],
          "volumeMounts": [{"name": "out", "mountPath": "/mnt/out"}, {"name": "config", "mountPath": "/mnt/config"}]}
    await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
                         "data": {"greeting": "hello ", "k": "world"}})
    await cluster.apply(workload("Job", "good", [ok], backoffLimit=0, pod={
        "restartPolicy": "Never",
        "volumes": [{"name": "out", "hostPath": {"path": "/results"}}, {"name": "config", "configMap": {"name": "cfg"}}]}))
    bad = {"name": "bad", "image": IMAGE, "command": ["python", "-c", "import sys; sys.exit(3)"]}
    await cluster.apply(workload("Job", "bad", [bad], backoffLimit=1, pod={"restartPolicy": "Never"}))

    async def finished(name):
        st = (await cluster.get(protocol.JOB, name)).get("status") or {}
        return st if st.get("conditions") else None

    good = await until("the good Job", lambda: finished("good"))
    assert good["succeeded"] == 1 and good["conditions"][0]["type"] == "Complete"
    assert (home / "volumes" / "hostpath" / "results" / "result").read_text() == "hello world"
    failed = await until("the bad Job", lambda: finished("bad"))
    assert failed["failed"] == 2 and failed["conditions"][0]["type"] == "Failed"  # backoffLimit 1 → 2 tries
    assert "exited with code 3" in failed["conditions"][0]["message"]


async def test_a_volume_mounted_inside_another_is_listed_there(env):
    """As in a container: the model server lists /mnt/adapter and finds the adapter volume in it."""
    cluster, _, home = env
    tuned = home / "volumes" / "hostpath" / "adapters" / "tuned"
    tuned.mkdir(parents=True)
    (tuned / "adapter_config.json").write_text("{}")
    script = ("import os; open('/mnt/out/seen', 'w').write(','.join(sorted(os.listdir('/mnt/adapter'))) + ':' "
              "+ ','.join(os.listdir('/mnt/adapter/tuned')))")
    job = {"name": "lister", "image": IMAGE, "command": ["python", "-c", script],
           "volumeMounts": [{"name": "out", "mountPath": "/mnt/out"}, {"name": "adapters", "mountPath": "/mnt/adapter"},
                            {"name": "tuned", "mountPath": "/mnt/adapter/tuned", "readOnly": True}]}
    await cluster.apply(workload("Job", "lister", [job], backoffLimit=0, pod={
        "restartPolicy": "Never",
        "volumes": [{"name": "out", "hostPath": {"path": "/out"}}, {"name": "adapters", "emptyDir": {}},
                    {"name": "tuned", "hostPath": {"path": "/adapters/tuned"}}]}))

    async def succeeded():
        return ((await cluster.get(protocol.JOB, "lister")).get("status") or {}).get("succeeded")

    await until("the listing Job", succeeded)
    assert (home / "volumes" / "hostpath" / "out" / "seen").read_text() == "tuned:adapter_config.json"
    links = list((home / "volumes" / "pods" / "default").glob("lister*/adapters/tuned"))
    assert len(links) == 1 and links[0].is_symlink()
    await cluster.delete(protocol.JOB, "lister", "default")
    await until("the pod's folders to go", _async_not_exists(home / "volumes" / "pods" / "default"))
    assert (tuned / "adapter_config.json").is_file()  # removing the pod's link left the volume alone


def _async_not_exists(path):
    async def probe():
        return not any(path.glob("lister*"))
    return probe


async def test_crashing_container_restarts_with_backoff(env):
    cluster, runner, _ = env
    crash = {"name": "crash", "image": IMAGE, "command": ["python", "-c", "raise SystemExit(1)"]}
    await cluster.apply(workload("Deployment", "crash", [crash], replicas=1))

    async def restarted():
        pods = (await cluster.list(protocol.POD, "default", labels={"kaito.sh/workspace": "crash"})).items
        counts = [c["restartCount"] for p in pods for c in (p.get("status") or {}).get("containerStatuses") or []]
        return counts and counts[0] >= 2

    await until("two restarts", restarted)
    assert (await cluster.get(protocol.DEPLOYMENT, "crash"))["status"]["readyReplicas"] == 0


async def test_foreign_image_gets_a_condition_and_no_process(env):
    cluster, _, home = env
    await cluster.apply(workload("Deployment", "web", [{"name": "web", "image": "nginx:1.27"}], replicas=1))

    async def condition():
        conds = ((await cluster.get(protocol.DEPLOYMENT, "web")).get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "Progressing" and c["status"] == "False"), None)

    cond = await until("the Progressing=False condition", condition)
    assert cond["reason"] == "ImageNeedsCluster" and "nginx:1.27" in cond["message"]
    assert processes.find_strays(home) == {}
    events = (await cluster.list(protocol.EVENT, "default")).items
    assert any(e["reason"] == "ImageNeedsCluster" for e in events)


async def test_pods_wait_for_a_matching_node(env):
    cluster, _, _ = env
    other = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "apps", "operator": "In", "values": ["elsewhere"]}]}]}}}
    container = {"name": "x", "image": IMAGE, "command": [sys.executable, "-c", "print(1)"]}
    await cluster.apply(workload("Job", "nowhere", [container], pod={"affinity": other, "restartPolicy": "Never"}))

    async def pending():
        pods = (await cluster.list(protocol.POD, "default", labels={"kaito.sh/workspace": "nowhere"})).items
        return pods and pods[0]["status"].get("reason") == "Unschedulable" and pods[0]

    pod = await until("an Unschedulable pod", pending)
    assert pod["status"]["phase"] == "Pending"
    with pytest.raises(errors.NotFound):
        await cluster.get(protocol.NODE, "local-nowhere")


async def test_new_template_replaces_the_pod(env):
    cluster, _, home = env

    def deployment(version: str) -> dict:
        container = {"name": "srv", "image": IMAGE, "command": ["python", "-c", SERVER], "args": ["--port=5000"],
                     "env": [{"name": "VERSION", "value": version}], "ports": [{"containerPort": 5000}],
                     "readinessProbe": {"httpGet": {"path": "/", "port": 5000}}}
        return workload("Deployment", "roll", [container], replicas=1)

    async def ready_pod():
        pods = (await cluster.list(protocol.POD, "default", labels={"kaito.sh/workspace": "roll"})).items
        ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                        for c in (p.get("status") or {}).get("conditions") or [])]
        return len(pods) == 1 and ready and ready[0]["metadata"]["name"]

    await cluster.apply(deployment("1"))
    first = await until("the first pod", ready_pod)
    before = set(processes.find_strays(home))
    await cluster.apply(deployment("2"))

    async def replaced():
        name = await ready_pod()
        return name if name and name != first else None

    second = await until("the replacement pod", replaced)
    assert second.startswith("roll-") and second != first
    after = set(processes.find_strays(home))
    assert len(after) == 1 and not after & before


class _SlowStatusWrites:
    """The store, with each Pod status write of a not-yet-running pod held until the pod's process runs.

    That is the race the runner must survive: the worker's state changes while a write of an
    older state is in flight."""

    def __init__(self, cluster, runner_ref):
        self._cluster, self._runner_ref = cluster, runner_ref
        self.held = 0

    def __getattr__(self, name):
        return getattr(self._cluster, name)

    async def apply_status(self, obj, **kwargs):
        if obj["kind"] == "Pod" and obj["status"]["phase"] == "Pending" and not obj["status"].get("localPid"):
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            worker = self._runner_ref[0].workers.get(key)
            for _ in range(200):
                if worker is None or worker.state.phase == "Running":
                    break
                await asyncio.sleep(0.02)
            self.held += worker is not None and worker.state.phase == "Running"
        return await self._cluster.apply_status(obj, **kwargs)


async def test_a_running_pod_that_never_gets_ready_is_running_in_the_store(tmp_path):
    store = LocalCluster(tmp_path / "store.db", poll_interval=0.02)
    await store.apply({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                       "metadata": {"name": "c-0", "labels": {"apps": "t"}}, "spec": {"requirements": []}})
    await LocalProvisioner(store, MachineFacts("host", 2, 2**30)).sync()
    runner_ref: list = []
    slow = _SlowStatusWrites(store, runner_ref)
    runner = LocalRunner(slow, tmp_path / "home", is_runtime_image=is_runtime, resync_s=0.3)
    runner_ref.append(runner)
    container = {"name": "srv", "image": IMAGE, "command": ["python", "-c", SERVER], "args": ["--port=5000"],
                 "ports": [{"containerPort": 5000}], "readinessProbe": {"httpGet": {"path": "/nowhere/", "port": 5000}}}
    await store.apply(workload("Deployment", "stuck", [container], replicas=1))
    task = asyncio.create_task(runner.run())
    try:
        async def running():
            pods = (await store.list(protocol.POD, "default")).items
            return pods and (pods[0].get("status") or {}).get("phase") == "Running" and pods[0]

        pod = await until("the Pod to be Running in the store", running, timeout=20)
        conds = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conds["Initialized"] == "True" and conds["Ready"] == "False"
        assert pod["status"]["localPid"] == runner.workers[("default", pod["metadata"]["name"])].state.pid
        assert slow.held >= 1  # the race really happened: a Pending write landed after the process ran
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.close()
    assert processes.find_strays(tmp_path / "home") == {}


async def test_a_named_probe_port_is_resolved_and_an_unknown_one_reported(env):
    cluster, _, _ = env

    def container(port):
        return {"name": "srv", "image": IMAGE, "command": ["python", "-c", SERVER], "args": ["--port=5000"],
                "ports": [{"name": "http", "containerPort": 5000}],
                "readinessProbe": {"httpGet": {"path": "/", "port": port}}}

    await cluster.apply(workload("Deployment", "named", [container("http")], replicas=1))
    await cluster.apply(workload("Deployment", "typo", [container("htp")], replicas=1))

    async def ready(name):
        st = (await cluster.get(protocol.DEPLOYMENT, name)).get("status") or {}
        return st.get("readyReplicas") == 1

    await until("the named-port Deployment to be ready", lambda: ready("named"))

    async def probe_error():
        pods = (await cluster.list(protocol.POD, "default", labels={"kaito.sh/workspace": "typo"})).items
        conds = [c for p in pods for c in (p.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
        return conds and conds[0]["reason"] == "ReadinessProbeError" and conds[0]

    cond = await until("the probe error on the pod", probe_error)
    assert cond["status"] == "False" and "'htp' is not a named container port (named ports: http)" in cond["message"]
    events = (await cluster.list(protocol.EVENT, "default")).items
    assert any(e["reason"] == "Unhealthy" and "'htp'" in e["message"] for e in events)


async def test_pods_are_not_ready_once_the_runner_stops_nor_after_a_restart_until_probed(tmp_path):
    store = LocalCluster(tmp_path / "store.db", poll_interval=0.02)
    await store.apply({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                       "metadata": {"name": "c-0", "labels": {"apps": "t"}}, "spec": {"requirements": []}})
    await LocalProvisioner(store, MachineFacts("host", 2, 2**30)).sync()
    container = {"name": "srv", "image": IMAGE, "command": ["python", "-c", SERVER], "args": ["--port=5000"],
                 "ports": [{"containerPort": 5000}], "readinessProbe": {"httpGet": {"path": "/", "port": 5000}}}
    await store.apply(workload("Deployment", "srv", [container], replicas=1))

    def ready_of(pod):
        return next(c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready")

    async def ready_pod():
        pods = (await store.list(protocol.POD, "default")).items
        return pods and pods[0].get("status") and ready_of(pods[0]) == "True" and pods[0]

    try:
        runner = LocalRunner(store, tmp_path / "home", is_runtime_image=is_runtime, resync_s=0.3)
        task = asyncio.create_task(runner.run())
        await until("a ready pod", ready_pod)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        pod = (await store.list(protocol.POD, "default")).items[0]
        assert ready_of(pod) == "False" and "localPid" not in pod["status"]
        assert pod["status"]["phase"] == "Unknown" and pod["status"]["reason"] == "ControlPlaneStopped"

        # A SIGKILLed control plane leaves Ready=True behind; the next one starts by marking it stale.
        await store.apply_status({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": pod["metadata"]["name"], "namespace": "default"}, "status": {
            "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "localPid": 1}}, field_manager="kubelet")
        second = LocalRunner(store, tmp_path / "home", is_runtime_image=is_runtime, resync_s=0.3)
        assert await second.mark_pods_stopped("ControlPlaneRestarted", "stale") == 1
        stale = await store.get(protocol.POD, pod["metadata"]["name"], "default")
        assert ready_of(stale) == "False" and "localPid" not in stale["status"]
        task = asyncio.create_task(second.run())
        await until("the pod ready again under the new runner", ready_pod)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await store.close()
    assert processes.find_strays(tmp_path / "home") == {}


async def test_a_finished_job_is_not_run_again_by_the_next_runner(tmp_path):
    """Found by the fault-injection e2e: after a control plane restart, a Job that had failed (the
    trainer killed, `backoffLimit: 0`) was run again and its Workspace turned from failed to succeeded;
    a Job that had completed rewrote its output. As on Kubernetes, a finished Job stays finished."""
    store = LocalCluster(tmp_path / "store.db", poll_interval=0.02)
    await store.apply({"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                       "metadata": {"name": "c-0", "labels": {"apps": "t"}}, "spec": {"requirements": []}})
    await LocalProvisioner(store, MachineFacts("host", 2, 2**30)).sync()
    runs = tmp_path / "home" / "volumes" / "hostpath" / "runs"
    count = {"name": "c", "image": IMAGE, "volumeMounts": [{"name": "out", "mountPath": "/mnt/out"}],
             "command": ["python", "-c", "import os, sys; open('/mnt/out/' + os.environ['JOB'], 'a').write('run\\n'); "
                                         "sys.exit(int(os.environ['CODE']))"]}
    for name, code in (("done", 0), ("failed", 3)):
        job = workload("Job", name, [{**count, "env": [{"name": "JOB", "value": name}, {"name": "CODE", "value": str(code)}]}],
                        backoffLimit=0, pod={"restartPolicy": "Never", "volumes": [{"name": "out", "hostPath": {"path": "/runs"}}]})
        await store.apply(job)

    async def conditions(name):
        return ((await store.get(protocol.JOB, name)).get("status") or {}).get("conditions")

    async def both_finished():
        return await conditions("done") and await conditions("failed")

    try:
        for _ in range(2):  # the first runner runs them; the second (a restarted plane) must not
            runner = LocalRunner(store, tmp_path / "home", is_runtime_image=is_runtime, resync_s=0.2)
            task = asyncio.create_task(runner.run())
            await until("both Jobs finished", both_finished)
            for _ in range(3):  # a few passes of the runner
                await runner.sync()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert (runs / "done").read_text() == "run\n" and (runs / "failed").read_text() == "run\n"
        assert (await conditions("done"))[0]["type"] == "Complete"
        assert (await conditions("failed"))[0]["type"] == "Failed"
        pods = {p["metadata"]["name"].split("-")[0]: p["status"]["phase"] for p in (await store.list(protocol.POD)).items}
        assert pods == {"done": "Succeeded", "failed": "Failed"}  # kept, as Kubernetes keeps a Job's pods
    finally:
        await store.close()
    assert processes.find_strays(tmp_path / "home") == {}
