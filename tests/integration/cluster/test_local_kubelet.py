"""The local runner keeps the kubelet's promises: probes and termination grace, with real processes.

A hung (SIGSTOPped) HTTP server is killed by its liveness probe and started again, with
restartCount, `lastState.terminated` and the kubelet's Events; a startup probe holds liveness
back; `terminationGracePeriodSeconds` is the time between SIGTERM and SIGKILL. Probe periods are
the shortest Kubernetes allows (1 s), so each test takes a few seconds.
"""

from __future__ import annotations

import json
import os
import signal

import pytest_asyncio

from kaito.cluster import protocol
from kaito.cluster.local import processes
from tests.integration.cluster.runner_kit import IMAGE, SERVER, runner_env, until, workload

FAST = {"periodSeconds": 1, "timeoutSeconds": 1}


@pytest_asyncio.fixture(loop_scope="function")
async def env(tmp_path):
    async with runner_env(tmp_path) as (cluster, _, home):
        yield cluster, home


async def _pod(cluster, app: str) -> dict | None:
    pods = (await cluster.list(protocol.POD, "default", labels={"kaito.sh/workspace": app})).items
    return pods[0] if pods and pods[0].get("status") else None


def _ready(pod: dict | None) -> bool:
    return bool(pod) and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])


async def _events(cluster, pod_name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for e in (await cluster.list(protocol.EVENT, "default")).items:
        if e["involvedObject"]["name"] == pod_name:
            found.setdefault(e["reason"], []).append(e["message"])
    return found


async def test_a_hung_server_is_restarted_by_its_liveness_probe(env):
    cluster, home = env
    probe = {"httpGet": {"path": "/", "port": 5000}, **FAST}
    container = {"name": "srv", "image": IMAGE, "command": ["python", "-c", SERVER], "args": ["--port=5000"],
                 "ports": [{"containerPort": 5000}], "readinessProbe": probe,
                 "livenessProbe": {**probe, "failureThreshold": 2}}
    await cluster.apply(workload("Deployment", "hang", [container], replicas=1,
                                  pod={"terminationGracePeriodSeconds": 1}))

    async def ready_pod():
        pod = await _pod(cluster, "hang")
        return _ready(pod) and pod["status"].get("localPid") and pod

    first = await until("a ready pod", ready_pod)
    hung = first["status"]["localPid"]
    port = json.loads(first["metadata"]["annotations"]["kaito.sh/local-ports"])["5000"]
    os.kill(hung, signal.SIGSTOP)  # alive, port open, never answers: only a liveness probe can tell

    async def restarted():
        pod = await ready_pod()
        return pod and pod["status"]["localPid"] != hung and pod

    pod = await until("the liveness probe to restart the hung server", restarted)
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1 and status["ready"] and "running" in status["state"]
    assert status["lastState"]["terminated"]["exitCode"] == 128 + signal.SIGKILL  # SIGTERM cannot reach it
    assert not processes.is_alive(hung) and processes.is_port_open(port)
    assert list(processes.find_strays(home)) == [pod["status"]["localPid"]]
    events = await _events(cluster, pod["metadata"]["name"])
    assert any(m.startswith("Liveness probe failed: ") for m in events["Unhealthy"])
    assert events["Killing"] == ["Container srv failed liveness probe, will be restarted"]


async def test_startup_probe_holds_liveness_back_and_kills_a_server_that_never_starts(env):
    cluster, _ = env
    slow = ("import sys, time, http.server\n"
            "time.sleep(3)\n"  # longer than liveness alone would allow (1 s x 1 failure)
            "port = int(sys.argv[1].split('=')[1])\n"
            "http.server.HTTPServer(('127.0.0.1', port), http.server.SimpleHTTPRequestHandler).serve_forever()\n")
    live = {"httpGet": {"path": "/", "port": 5000}, **FAST, "failureThreshold": 1}

    def container(startup_failures: int) -> dict:
        return {"name": "srv", "image": IMAGE, "command": ["python", "-c", slow], "args": ["--port=5000"],
                "ports": [{"containerPort": 5000}], "livenessProbe": live, "readinessProbe": live,
                "startupProbe": {**live, "failureThreshold": startup_failures}}

    await cluster.apply(workload("Deployment", "patient", [container(20)], replicas=1,
                                  pod={"terminationGracePeriodSeconds": 1}))
    await cluster.apply(workload("Deployment", "hasty", [container(1)], replicas=1,
                                  pod={"terminationGracePeriodSeconds": 1}))

    pod = await until("the patient pod to be ready", lambda: _ready_pod(cluster, "patient"))
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0  # liveness waited for startup
    assert pod["status"]["containerStatuses"][0]["started"] is True

    async def killed():
        pod = await _pod(cluster, "hasty")
        return pod and "Killing" in (events := await _events(cluster, pod["metadata"]["name"])) and events

    events = await until("the startup probe to give up on the hasty pod", killed)
    assert events["Killing"] == ["Container srv failed startup probe, will be restarted"]
    assert any(m.startswith("Startup probe failed: ") for m in events["Unhealthy"])


async def _ready_pod(cluster, app):
    pod = await _pod(cluster, app)
    return _ready(pod) and pod


TRAP = ("import os, signal, sys, time\n"
        "out = sys.argv[1]\n"
        "def term(*_):\n"
        "    open(out, 'a').write('term\\n')\n"
        "    time.sleep(3)\n"  # the clean-up a graceful server does
        "    open(out, 'a').write('clean exit\\n')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "open(out, 'a').write('up\\n')\n"
        "while True:\n"
        "    time.sleep(0.1)\n")


async def test_termination_grace_period_is_the_time_between_sigterm_and_sigkill(env, tmp_path):
    cluster, home = env
    for name, grace in (("roomy", 10), ("tight", 1)):
        out = tmp_path / f"{name}.log"
        container = {"name": name, "image": IMAGE, "command": ["python", "-c", TRAP, str(out)]}
        await cluster.apply(workload("Deployment", name, [container], replicas=1,
                                      pod={"terminationGracePeriodSeconds": grace}))

    async def both_up():
        return all((tmp_path / f"{n}.log").is_file() for n in ("roomy", "tight")) and len(processes.find_strays(home)) == 2

    await until("both processes to run", both_up)
    for name in ("roomy", "tight"):
        await cluster.delete(protocol.DEPLOYMENT, name, "default")

    async def all_gone():
        return not processes.find_strays(home)

    await until("both processes to stop", all_gone)
    # Both got SIGTERM first; the one with room finished its clean-up, the other was SIGKILLed in it.
    assert (tmp_path / "roomy.log").read_text() == "up\nterm\nclean exit\n"
    assert (tmp_path / "tight.log").read_text() == "up\nterm\n"


async def test_exec_liveness_and_tcp_readiness_run_in_the_pods_world(env):
    """An exec probe sees the container's paths (its volume at /mnt/work); a tcpSocket probe its port."""
    cluster, home = env
    script = ("import sys, http.server\n"
              "open('/mnt/work/alive', 'w').close()\n"
              "port = int(sys.argv[1].split('=')[1])\n"
              "http.server.HTTPServer(('127.0.0.1', port), http.server.SimpleHTTPRequestHandler).serve_forever()\n")
    container = {"name": "srv", "image": IMAGE, "command": ["python", "-c", script], "args": ["--port=5000"],
                 "ports": [{"containerPort": 5000}], "volumeMounts": [{"name": "work", "mountPath": "/mnt/work"}],
                 "readinessProbe": {"tcpSocket": {"port": 5000}, **FAST},
                 "startupProbe": {"exec": {"command": ["/bin/sh", "-c", "test -f /mnt/work/alive"]}, **FAST,
                                  "failureThreshold": 30},
                 "livenessProbe": {"exec": {"command": ["/bin/sh", "-c", "test -f /mnt/work/alive"]}, **FAST,
                                   "failureThreshold": 1}}
    await cluster.apply(workload("Deployment", "files", [container], replicas=1,
                                  pod={"terminationGracePeriodSeconds": 1, "volumes": [{"name": "work", "emptyDir": {}}]}))
    pod = await until("a ready pod", lambda: _ready_pod(cluster, "files"))
    alive = home / "volumes" / "pods" / "default" / pod["metadata"]["name"] / "work" / "alive"
    assert alive.is_file() and pod["status"]["containerStatuses"][0]["restartCount"] == 0
    alive.unlink()  # the exec probe now fails: the container is restarted, and makes the file again

    async def restarted():
        pod = await _ready_pod(cluster, "files")
        return pod and pod["status"]["containerStatuses"][0]["restartCount"] == 1 and pod

    await until("the exec liveness probe to restart the container", restarted)
    assert alive.is_file()
    events = await _events(cluster, pod["metadata"]["name"])
    assert any("Liveness probe failed: command" in m for m in events["Unhealthy"])
