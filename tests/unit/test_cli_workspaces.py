"""`kaito get`'s columns and ages, and how the local endpoint is found on a Workspace's pods."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kaito.cli import workspaces

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_kaito_columns_from_conditions():
    ws = {"metadata": {"name": "phi", "creationTimestamp": "2026-01-02T03:00:05Z"},
          "resource": {"instanceType": "Standard_NC6s_v3"},
          "status": {"conditions": [{"type": "ResourceReady", "status": "True"},
                                    {"type": "InferenceReady", "status": "False"},
                                    {"type": "WorkspaceSucceeded", "status": "False"}]}}
    row = workspaces.build_row(ws)
    assert row[:6] == ["phi", "Standard_NC6s_v3", "True", "False", "", "False"]
    assert workspaces.compute_age("2026-01-02T03:00:05Z", NOW) == "4m"
    assert workspaces.compute_age("2025-12-30T03:04:05Z", NOW) == "3d"
    assert workspaces.compute_age("not a time", NOW) == "<unknown>"


def _pod(ready: bool, ports: dict) -> dict:
    return {"metadata": {"annotations": {"kaito.sh/local-ports": json.dumps(ports)}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_endpoint_is_the_first_ready_pod_serving_port_5000():
    assert workspaces.build_endpoint([_pod(False, {"5000": 1111}), _pod(True, {"5000": 2222})]) == "http://127.0.0.1:2222"
    assert workspaces.build_endpoint([_pod(True, {"80": 3333})]) is None
    assert workspaces.build_endpoint([]) is None


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
