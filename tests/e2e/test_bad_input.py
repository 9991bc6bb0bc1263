"""e2e: bad input through the CLI gets a clear message and exit 1, and nothing is created; a Workspace
with a foreign image written past the CLI (as kubectl would) gets a clear condition instead."""

from __future__ import annotations

import asyncio
import json

from tests.e2e.conftest import wait_for, workspace_yaml

TEMPLATE = """apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: web
resource:
  instanceType: Standard_NC6s_v3
  labelSelector:
    matchLabels:
      apps: web
inference:
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
"""


def _workspace_names(kaito) -> list[str]:
    listed = json.loads(kaito("get", "workspaces", "-o", "json", check=True).stdout)
    return [w["metadata"]["name"] for w in listed["items"]]


def test_bad_input_is_refused_before_anything_is_written(local_cluster, tiny_model):
    kaito = local_cluster
    broken = kaito.write("broken.yaml", "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata: {name: x\n")
    result = kaito("apply", "-f", broken)
    assert result.returncode == 1
    assert "broken.yaml:" in result.stdout + result.stderr and "YAML syntax error" in result.stdout + result.stderr

    unknown = kaito.write("unknown.yaml", workspace_yaml("unknown", "no-such-model"))
    result = kaito("apply", "-f", unknown)
    assert result.returncode == 1
    assert "inference.preset.name" in result.stdout and "no-such-model" in result.stdout

    # Two documents, the second one bad: the first must not be created either.
    mixed = kaito.write("mixed.yaml", workspace_yaml("good", tiny_model.repo_id) + "---\n" + TEMPLATE)
    result = kaito("apply", "-f", mixed)
    assert result.returncode == 1
    assert "nginx:1.27" in result.stderr and "Kubernetes cluster" in result.stderr
    assert "Traceback" not in result.stderr
    assert _workspace_names(kaito) == []

    missing = kaito("apply", "-f", str(kaito.home.parent / "nope.yaml"))
    assert missing.returncode == 1 and "nope.yaml" in missing.stderr
    assert kaito("get", "pods").returncode == 2  # only workspaces are served
    again = kaito("up", "--detach", check=True)
    assert "already runs" in again.stdout  # one control plane per state directory


def test_foreign_image_written_past_the_cli_gets_a_clear_condition(local_cluster):
    kaito = local_cluster
    import yaml

    from kaito.cluster.local import LocalCluster

    async def write() -> None:
        cluster = LocalCluster(kaito.home / "store.db")
        try:
            await cluster.apply(yaml.safe_load(TEMPLATE), field_manager="kubectl")
        finally:
            await cluster.close()

    asyncio.run(write())

    def described() -> str | None:
        text = kaito("describe", "workspace", "web", check=True).stdout
        return text if "ImageNeedsCluster" in text else None

    text = wait_for("the ImageNeedsCluster event", described, timeout=60)
    assert "nginx:1.27" in text and "needs a Kubernetes cluster" in text

    def failed() -> dict | None:
        conditions = {c["type"]: c for c in (kaito.workspace("web").get("status") or {}).get("conditions", [])}
        done = conditions.get("WorkspaceSucceeded") or {}
        return conditions if done.get("reason") == "workspaceFailed" else None

    conditions = wait_for("the Workspace's ImageNeedsCluster condition", failed, timeout=60)
    inference = conditions["InferenceReady"]
    assert (inference["status"], inference["reason"]) == ("False", "ImageNeedsCluster")
    assert "nginx:1.27" in inference["message"] and "needs a Kubernetes cluster" in inference["message"]
    assert conditions["WorkspaceSucceeded"]["status"] == "False"
    assert "nginx:1.27" in conditions["WorkspaceSucceeded"]["message"]
    assert kaito.pod_processes() == {}
    assert kaito("delete", "workspace", "web", timeout=60).returncode == 0


def test_asking_for_vllm_where_it_is_not_installed_is_a_condition_not_a_crash_loop(local_cluster, tiny_model):
    """This suite's local cluster has no vLLM: `kaito.sh/runtime: vllm` gets a condition saying how to
    install it, and no pod, rather than a model server failing over and over."""
    kaito = local_cluster
    text = workspace_yaml("wants-vllm", tiny_model.repo_id).replace("kaito.sh/v1alpha1", "kaito.sh/v1beta1")
    text = text.replace("metadata:\n  name: wants-vllm\n", "metadata:\n  name: wants-vllm\n  annotations:\n"
                                                           "    kaito.sh/runtime: vllm\n")
    applied = kaito("apply", "-f", kaito.write("wants-vllm.yaml", text), "--wait", "--timeout", "60", timeout=90)
    assert applied.returncode == 1 and "Traceback" not in applied.stderr
    assert "vLLM is not installed for this local cluster" in applied.stderr and "--vllm-python" in applied.stderr
    conditions = {c["type"]: c for c in kaito.workspace("wants-vllm")["status"]["conditions"]}
    assert (conditions["InferenceReady"]["status"], conditions["InferenceReady"]["reason"]) == (
        "False", "vLLMNotInstalled")
    assert kaito.pod_processes() == {}
    wide = kaito("get", "workspaces", "-o", "wide", check=True).stdout
    (row,) = [line for line in wide.splitlines() if line.startswith("wants-vllm")]
    assert " vllm " in row
    assert kaito("delete", "workspace", "wants-vllm", timeout=60).returncode == 0
