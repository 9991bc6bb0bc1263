"""The local control plane runs KAITO v0.12's vLLM pods, and a model server that cannot start is a condition.

The whole chain in one process: store, controller, provisioner and runner (`ControlPlane`), told
that vLLM pods run in this interpreter. This suite's interpreter has no vLLM, which is the point:
kaito's runtime stops before loading anything, writes its termination message, the runner keeps it
in the pod's `lastState`, and the controller turns it into the Workspace's condition — the key of
`inference.config` at fault first (`max_probe_steps`, which admission leaves to the runtime), then,
once the ConfigMap is fixed and the pod restarts, that vLLM cannot run here. The vLLM lane runs the
same chain with vLLM installed (`tests/vllm_lane/test_local_cluster.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

import pytest

from kaito.cluster import protocol
from kaito.cluster.local import processes
from kaito.cluster.local.vllm_runtime import VllmRuntime
from kaito.operator.controlplane import ControlPlane

pytestmark = pytest.mark.slow


def _workspace() -> dict:
    return {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace",
            "metadata": {"name": "beta", "namespace": "default"},
            "resource": {"instanceType": "Standard_NC6s_v3", "labelSelector": {"matchLabels": {"apps": "beta"}}},
            "inference": {"preset": {"name": "kaito-test/no-such-model"}, "config": "params"}}


def _params(text: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "params", "namespace": "default"},
            "data": {"inference_config.yaml": text}}


async def _until(what, probe, timeout=60.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_vllm_pod_that_cannot_start_is_a_workspace_condition(tmp_path) -> None:
    home = tmp_path / "home"
    plane = ControlPlane(home, requeue_s=0.2, vllm=VllmRuntime(python=sys.executable, source="this test"))
    stop = asyncio.Event()
    task = asyncio.create_task(plane.run(stop))
    try:
        await _until("the control plane", lambda: _ready(plane))
        cluster = plane.cluster
        await cluster.apply(_params("max_probe_steps: 0\nvllm:\n  max-num-seqs: 2\n"), field_manager="kubectl")
        await cluster.apply(_workspace(), field_manager="kubectl")

        async def ready_condition(reason: str):
            ws = await cluster.get(protocol.WORKSPACE, "beta", "default")
            conds = {c["type"]: c for c in (ws.get("status") or {}).get("conditions") or []}
            found = conds.get("InferenceReady")
            return (found if found and found["reason"] == reason else None), conds

        async def condition(reason: str):
            return (await ready_condition(reason))[0]

        ready = await _until("the termination message as a condition", lambda: condition("InvalidRuntimeParameters"))
        assert ready["status"] == "False" and "max_probe_steps" in ready["message"]
        assert ready["message"].startswith("pod beta-0 exited with code 3: ")
        _, conds = await ready_condition("InvalidRuntimeParameters")
        assert conds["WorkspaceSucceeded"]["reason"] == "workspaceFailed"
        sts = await cluster.get(protocol.STATEFULSET, "beta", "default")
        assert "--engine=vllm" in sts["spec"]["template"]["spec"]["containers"][0]["args"]
        (pod,) = (await cluster.list(protocol.POD, "default", labels={"kaito.sh/workspace": "beta"})).items
        assert pod["metadata"]["name"] == "beta-0"

        # Fixed: the next start reads the new file (content edits do not roll the pod, as in KAITO)
        # and stops at the next thing it cannot do here.
        await cluster.apply(_params("vllm:\n  max-num-seqs: 2\n"), field_manager="kubectl")
        ready = await _until("the next failure", lambda: condition("EngineUnavailable"), timeout=90)
        assert "vLLM is not installed" in ready["message"]
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 60)
    assert processes.find_strays(home) == {}


async def _ready(plane: ControlPlane) -> bool:
    if plane.cluster is None or plane.runner is None:
        return False
    try:
        await plane.cluster.get(protocol.CONFIGMAP, "kaito-local-cluster", "kaito-workspace")
    except Exception:  # noqa: BLE001 - not written yet
        return False
    return True
