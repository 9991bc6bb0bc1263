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
