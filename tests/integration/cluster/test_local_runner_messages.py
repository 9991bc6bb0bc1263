"""The local pod runner's account of why a container stopped, and vLLM pods' interpreter.

A container's termination message (its `terminationMessagePath`, or its log's tail with
`FallbackToLogsOnError`) reaches the Pod's `lastState`, where the controller reads why a model server
stopped before serving; a vLLM model server runs in the interpreter the runner was given.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import pytest_asyncio

from kaito.cluster import protocol
from kaito.cluster.local import LocalCluster
from kaito.cluster.local.runner import LocalRunner
from tests.integration.cluster.runner_kit import (
    IMAGE,
    add_local_node,
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


TELL = ("import json, os, sys\n"
        "open(os.environ['KAITO_TERMINATION_LOG'], 'w').write(json.dumps("
        "{'reason': 'InvalidRuntimeParameters', 'message': 'vllm.max-num-seq: no such option', "
        "'field': 'vllm.max-num-seq'}))\n"
        "sys.exit(3)\n")


async def _last_terminated(cluster, name: str):
    pods = (await cluster.list(protocol.POD, "default", labels={"kaito.sh/workspace": name})).items
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("lastState"):
                return status["lastState"]["terminated"]
    return None


async def test_a_termination_message_reaches_the_pods_last_state(env):
    cluster, _, _ = env
    container = {"name": "srv", "image": IMAGE, "command": ["python", "-c", TELL],
                 "terminationMessagePath": "/dev/termination-log"}
    await cluster.apply(workload("StatefulSet", "tell", [container], replicas=1))
    terminated = await until("the crash in lastState", lambda: _last_terminated(cluster, "tell"))
    assert terminated["exitCode"] == 3
    assert json.loads(terminated["message"]) == {"reason": "InvalidRuntimeParameters", "field": "vllm.max-num-seq",
                                                 "message": "vllm.max-num-seq: no such option"}
    await cluster.delete(protocol.STATEFULSET, "tell", "default")


async def test_without_a_message_fallback_to_logs_takes_the_logs_tail(env):
    cluster, _, _ = env
    script = "import sys\nfor i in range(200): print('line', i)\nprint('the real reason')\nsys.exit(1)\n"
    quiet = {"name": "quiet", "image": IMAGE, "command": ["python", "-c", script]}
    loud = {**quiet, "name": "loud", "terminationMessagePolicy": "FallbackToLogsOnError"}
    await cluster.apply(workload("StatefulSet", "quiet", [quiet], replicas=1))
    await cluster.apply(workload("StatefulSet", "loud", [loud], replicas=1))
    told = await until("loud's crash", lambda: _last_terminated(cluster, "loud"))
    plain = await until("quiet's crash", lambda: _last_terminated(cluster, "quiet"))
    assert told["message"].endswith("the real reason") and "line 100" not in told["message"]
    assert len(told["message"].encode()) <= 2048
    assert plain["message"].startswith("exited with code 1")  # File policy: the runner's own words
    for name in ("quiet", "loud"):
        await cluster.delete(protocol.STATEFULSET, name, "default")


async def test_vllm_model_servers_run_in_the_vllm_interpreter(tmp_path):
    """The runner starts a vLLM container with the interpreter it was given, the shared model cache as
    its download dir and a local KV-events port; a recording stand-in for the interpreter shows it."""
    record = tmp_path / "argv.json"
    fake = tmp_path / "vllm-python"
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    f"json.dump({{'argv': sys.argv, 'log': os.environ.get('KAITO_TERMINATION_LOG')}}, "
                    f"open({str(record)!r}, 'w'))\n")
    fake.chmod(0o755)
    cluster = LocalCluster(tmp_path / "store.db", poll_interval=0.02)
    runner = LocalRunner(cluster, tmp_path / "home", is_runtime_image=is_runtime, resync_s=0.3,
                         vllm_python=str(fake))
    await add_local_node(cluster)
    task = asyncio.create_task(runner.run())
    try:
        container = {"name": "vllm", "image": IMAGE, "command": ["python", "-m", "kaito.runtime.inference"],
                     "args": ["--engine=vllm", "--port=5000", "--download-dir=/workspace/weights",
                              '--kv-events-config={"enable_kv_cache_events":true}'],
                     "ports": [{"containerPort": 5000}, {"containerPort": 5557}]}
        await cluster.apply(workload("Job", "vllm", [container], pod={"restartPolicy": "Never"}))
        await until("the stand-in to run", lambda: settled(record.exists() and record.stat().st_size > 0))
        seen = json.loads(record.read_text())
        argv = seen["argv"]
        assert argv[1:3] == ["-m", "kaito.runtime.inference"] and "--engine=vllm" in argv
        cache = os.environ.get("HF_HUB_CACHE") or str(Path(os.environ.get("HF_HOME") or tmp_path / "home" / "huggingface")
                                                     / "hub")
        assert f"--download-dir={cache}" in argv
        kv = json.loads(next(a for a in argv if a.startswith("--kv-events-config=")).split("=", 1)[1])
        assert kv["endpoint"].startswith("tcp://127.0.0.1:") and not kv["endpoint"].endswith(":5557")
        assert seen["log"] and seen["log"].startswith(str(tmp_path / "home"))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await cluster.close()
