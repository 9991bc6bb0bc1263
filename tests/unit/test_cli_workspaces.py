"""`kaito get`'s columns and ages, and how the local endpoint is found on a Workspace's pods."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kaito.cli import common
from kaito.cluster.local import runner

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_kaito_columns_from_conditions():
    ws = {"metadata": {"name": "phi", "creationTimestamp": "2026-01-02T03:00:05Z"},
          "resource": {"instanceType": "Standard_NC6s_v3"},
          "status": {"conditions": [{"type": "ResourceReady", "status": "True"},
                                    {"type": "InferenceReady", "status": "False"},
                                    {"type": "WorkspaceSucceeded", "status": "False"}]}}
    row = common.build_row(ws)
    assert row[:6] == ["phi", "Standard_NC6s_v3", "True", "False", "", "False"]
    assert common.compute_age("2026-01-02T03:00:05Z", NOW) == "4m"
    assert common.compute_age("2025-12-30T03:04:05Z", NOW) == "3d"
    assert common.compute_age("not a time", NOW) == "<unknown>"


def _pod(ready: bool, ports: dict) -> dict:
    return {"metadata": {"annotations": {"kaito.sh/local-ports": json.dumps(ports)}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_endpoint_is_the_first_ready_pod_serving_port_5000():
    assert runner.find_local_endpoint([_pod(False, {"5000": 1111}), _pod(True, {"5000": 2222})]) == "http://127.0.0.1:2222"
    assert runner.find_local_endpoint([_pod(True, {"80": 3333})]) is None
    assert runner.find_local_endpoint([]) is None


def test_apply_to_a_real_cluster_keeps_the_url_guard(tmp_path):
    """`--kubeconfig` means a shared cluster: a loopback dataset URL is refused before any connection."""
    from typer.testing import CliRunner

    from kaito.cli.main import app

    ws = tmp_path / "tune.yaml"
    ws.write_text("""apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata: {name: tune}
resource: {instanceType: Standard_NC24ads_A100_v4, labelSelector: {matchLabels: {apps: tune}}}
tuning:
  preset: {name: phi-3-mini-128k-instruct}
  method: qlora
  input: {urls: ["http://127.0.0.1:8000/train.jsonl"]}
  output: {volumeSource: {hostPath: {path: /adapters/tune}}}
""")
    result = CliRunner().invoke(app, ["apply", "-f", str(ws), "--kubeconfig", str(tmp_path / "no-such-kubeconfig")])
    assert result.exit_code == 1
    assert "tuning.input.urls[0]" in result.output and "loopback" in result.output
    assert "Traceback" not in result.output


WORKSPACE = """apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata: {name: phi}
resource: {instanceType: Standard_NC6s_v3, labelSelector: {matchLabels: {apps: phi}}}
inference: {preset: {name: phi-3-mini-4k-instruct}}
"""


def _invoke(*args):
    from typer.testing import CliRunner

    from kaito.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_apply_names_skipped_kinds_and_writes_nothing_without_a_control_plane(tmp_path):
    f = tmp_path / "mixed.yaml"
    f.write_text(WORKSPACE + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n")
    home = tmp_path / "home"
    result = _invoke("apply", "-f", str(f), "--home", str(home))
    assert result.exit_code == 1, result.output
    assert "skipped Deployment/d (apps/v1): only Workspace, InferenceSet, RAGEngine, ConfigMap and Secret are applied" in result.output
    assert "kaito up --detach" in result.output and "nothing was applied" in result.output
    assert not (home / "store.db").exists() and "Traceback" not in result.output


def test_plan_applied_with_nothing_applicable():
    from kaito.cli import workspace_apply

    objects, skipped = workspace_apply.plan_applied([{"apiVersion": "apps/v1", "kind": "Deployment",
                                                      "metadata": {"name": "d"}}, "text", None])
    assert objects == [] and skipped == ["skipped Deployment/d (apps/v1): only Workspace, InferenceSet, RAGEngine, "
                                         "ConfigMap and Secret are applied"]


def _seed_ready_pod(home, port: int) -> None:
    """A store as a control plane killed with SIGKILL leaves it: a Workspace and its pod, still Ready."""
    import asyncio

    from kaito.cluster.local import LocalCluster

    async def seed():
        cluster = LocalCluster(home / "store.db")
        try:
            await cluster.apply({"apiVersion": "kaito.sh/v1alpha1", "kind": "Workspace",
                                 "metadata": {"name": "phi", "namespace": "default"},
                                 "resource": {"instanceType": "Standard_NC6s_v3",
                                              "labelSelector": {"matchLabels": {"a": "b"}}}})
            await cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": "phi-0", "namespace": "default", "labels": {"kaito.sh/workspace": "phi"},
                "annotations": {"kaito.sh/local-ports": json.dumps({"5000": port})}},
                "spec": {"containers": [{"name": "phi", "image": "x"}]}})
            await cluster.apply_status({"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": "phi-0", "namespace": "default"}, "status": {
                "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
        finally:
            await cluster.close()

    asyncio.run(seed())


def test_no_dead_endpoint_when_the_control_plane_is_not_running(tmp_path):
    from kaito.cluster.local import processes

    home = tmp_path / "home"
    port = processes.find_free_port()
    _seed_ready_pod(home, port)
    for args in (("endpoint", "phi"), ("chat", "phi", "hi")):
        result = _invoke(*args, "--home", str(home))
        assert result.exit_code == 1, result.output
        assert "local control plane" in result.output and "is not running" in result.output
        assert f"127.0.0.1:{port}" not in result.output and "Traceback" not in result.output
    result = _invoke("get", "workspaces", "-o", "wide", "--home", str(home))
    assert result.exit_code == 0 and "is not running" in result.output and f"127.0.0.1:{port}" not in result.output


def test_chat_with_an_unreachable_server_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    from kaito.cluster.local import processes
    from kaito.operator import controlplane

    home = tmp_path / "home"
    port = processes.find_free_port()  # nothing listens there
    _seed_ready_pod(home, port)
    monkeypatch.setattr(controlplane, "running_pid", lambda paths: 4242)  # as if `kaito up` ran
    result = _invoke("chat", "phi", "hi", "--home", str(home))
    assert result.exit_code == 1
    assert f"model server at http://127.0.0.1:{port} is not reachable" in result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


def _seed_both_versions(home) -> None:
    """A store holding a Workspace written in each served version (as `kaito apply` writes them)."""
    import asyncio

    import yaml

    from kaito.cluster.local import LocalCluster

    beta = yaml.safe_load(WORKSPACE.replace("v1alpha1", "v1beta1").replace("name: phi}", "name: beta}"))
    beta["inference"]["preset"]["presetOptions"] = {"modelAccessSecret": "hf-token"}

    async def seed():
        cluster = LocalCluster(home / "store.db")
        try:
            await cluster.apply(yaml.safe_load(WORKSPACE), field_manager="kaito-cli")
            await cluster.apply(beta, field_manager="kaito-cli")
        finally:
            await cluster.close()

    asyncio.run(seed())


def test_get_shows_each_workspace_in_the_version_it_was_applied_with(tmp_path):
    import yaml

    home = tmp_path / "home"
    _seed_both_versions(home)
    alpha = yaml.safe_load(_invoke("get", "workspace", "phi", "-o", "yaml", "--home", str(home)).stdout)
    assert alpha["apiVersion"] == "kaito.sh/v1alpha1" and alpha["resource"]["instanceType"] == "Standard_NC6s_v3"
    beta = yaml.safe_load(_invoke("get", "workspace", "beta", "-o", "yaml", "--home", str(home)).stdout)
    assert beta["apiVersion"] == "kaito.sh/v1beta1"
    assert beta["inference"]["preset"]["presetOptions"] == {"modelAccessSecret": "hf-token"}
    listed = json.loads(_invoke("get", "workspaces", "-o", "json", "--home", str(home)).stdout)
    assert {w["metadata"]["name"]: w["apiVersion"] for w in listed["items"]} == {
        "beta": "kaito.sh/v1beta1", "phi": "kaito.sh/v1alpha1"}
    # --api-version: the other version, losslessly (v1alpha1 carries the secret in an annotation).
    down = yaml.safe_load(_invoke("get", "workspace", "beta", "-o", "yaml", "--api-version", "v1alpha1",
                                  "--home", str(home)).stdout)
    assert down["apiVersion"] == "kaito.sh/v1alpha1" and not down["inference"]["preset"].get("presetOptions")
    assert "hf-token" in down["metadata"]["annotations"]["conversion.kaito.sh/hub-fields"]
    up = yaml.safe_load(_invoke("get", "workspace", "phi", "-o", "yaml", "--api-version", "kaito.sh/v1beta1",
                                "--home", str(home)).stdout)
    assert up["apiVersion"] == "kaito.sh/v1beta1"
    bad = _invoke("get", "workspace", "phi", "-o", "yaml", "--api-version", "v2", "--home", str(home))
    assert bad.exit_code == 2 and "--api-version" in bad.output
    table = _invoke("get", "workspaces", "--home", str(home))
    assert table.exit_code == 0 and "beta" in table.stdout and "phi" in table.stdout


def test_describe_names_the_version_written(tmp_path):
    home = tmp_path / "home"
    _seed_both_versions(home)
    out = _invoke("describe", "workspace", "phi", "--home", str(home)).stdout
    assert "API version:  kaito.sh/v1alpha1 (as written; stored as kaito.sh/v1beta1)" in out
    assert "Preset:       phi-3-mini-4k-instruct" in out
    assert "kaito.sh/v1beta1 (as written" in _invoke("describe", "workspace", "beta", "--home", str(home)).stdout


def _seed_ragengine(home) -> None:
    import asyncio

    from kaito.cluster.local import LocalCluster

    async def seed() -> None:
        home.mkdir(parents=True, exist_ok=True)
        cluster = LocalCluster(home / "store.db")
        try:
            await cluster.apply({"apiVersion": "kaito.sh/v1alpha1", "kind": "RAGEngine",
                                 "metadata": {"name": "docs", "namespace": "default"},
                                 "spec": {"embedding": {"local": {"modelID": "BAAI/bge-small-en-v1.5"}},
                                          "storage": {"persistentVolumeClaim": "docs-index"},
                                          "inferenceService": {"url": "http://phi/v1/chat/completions",
                                                               "contextWindowSize": 4096}}}, field_manager="kubectl")
            await cluster.apply_status({"apiVersion": "kaito.sh/v1beta1", "kind": "RAGEngine",
                                        "metadata": {"name": "docs", "namespace": "default"},
                                        "status": {"conditions": [
                                            {"type": "ResourceReady", "status": "True", "reason": "r", "message": "",
                                             "lastTransitionTime": "2026-01-01T00:00:00Z"},
                                            {"type": "ServiceReady", "status": "False", "reason": "s",
                                             "message": "RAG service is being created",
                                             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}, field_manager="kaito")
        finally:
            await cluster.close()

    asyncio.run(seed())


def test_get_describe_and_delete_take_ragengines(tmp_path):
    import yaml

    home = tmp_path / "home"
    _seed_ragengine(home)
    table = _invoke("get", "ragengines", "--home", str(home)).stdout.splitlines()
    # No control plane runs here: the status is the last one written, so the table marks it stale.
    assert table[0].split() == ["NAME", "INSTANCE", "RESOURCEREADY", "SERVICEREADY", "AGE", "STALE"]
    assert table[1].split()[:3] == ["docs", "True", "False"] and table[1].split()[-1] == "yes"
    wide = _invoke("get", "rag", "-o", "wide", "--home", str(home)).stdout
    assert "INFERENCE" in wide and "http://phi/v1/chat/completions" in wide
    assert _invoke("get", "rag", "-o", "name", "--home", str(home)).stdout.strip() == "ragengine.kaito.sh/docs"
    stored = yaml.safe_load(_invoke("get", "ragengine", "docs", "-o", "yaml", "--home", str(home)).stdout)
    assert stored["apiVersion"] == "kaito.sh/v1beta1"
    assert stored["spec"]["storage"]["persistentVolume"]["persistentVolumeClaim"] == "docs-index"
    alpha = yaml.safe_load(_invoke("get", "ragengine", "docs", "-o", "yaml", "--api-version", "v1alpha1",
                                   "--home", str(home)).stdout)
    assert alpha["spec"]["storage"]["persistentVolumeClaim"] == "docs-index"
    described = _invoke("describe", "ragengine", "docs", "--home", str(home)).stdout
    assert "Embedding:    local BAAI/bge-small-en-v1.5" in described
    assert "Inference:    http://phi/v1/chat/completions (context window 4096)" in described
    assert "RAG service is being created" in described
    missing = _invoke("describe", "ragengine", "nope", "--home", str(home))
    assert missing.exit_code == 1 and 'ragengine "nope" not found in namespace default' in missing.output
    unknown = _invoke("get", "pods", "--home", str(home))
    assert unknown.exit_code == 2 and "workspaces, inferencesets, ragengines are served here" in unknown.output
    # Without a control plane nothing would remove its finalizer: refused, and nothing is deleted.
    refused = _invoke("delete", "ragengine", "docs", "--no-wait", "--home", str(home))
    assert refused.exit_code == 1 and "it deletes ragengines, so nothing was deleted" in refused.output
    assert "docs" in _invoke("get", "ragengines", "--home", str(home)).stdout


def test_wait_ready_prints_each_condition_once(capsys):
    """`kaito apply --wait`'s progress line: every condition once, in the table's order (the
    success condition is also a column: it used to be printed twice)."""
    import asyncio

    from kaito.cli.workspace_apply import wait_ready

    conditions = [{"type": t, "status": "True", "reason": "r", "message": ""}
                  for t in ("WorkspaceSucceeded", "InferenceReady", "ResourceReady")]

    class Ready:
        async def get(self, kind, name, namespace):
            return {"metadata": {"name": name, "namespace": namespace}, "status": {"conditions": conditions}}

    assert asyncio.run(wait_ready(Ready(), common.WORKSPACE_KIND, "demo", "default", timeout=5)) == 0
    assert capsys.readouterr().err == "  demo: ResourceReady=True InferenceReady=True WorkspaceSucceeded=True\n"
