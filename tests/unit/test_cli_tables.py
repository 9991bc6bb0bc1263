"""Tables as kubectl users expect them: plain full-width columns in a pipe, the rich table on a
terminal; the live table of `kaito up` with every value under its header; one runtime registry."""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml
from rich.console import Console
from typer.testing import CliRunner

from kaito.catalog import presets
from kaito.cli import common, local
from kaito.cli.main import app
from kaito.manifests import images

BOX = set("─━│┃┌┐└┘├┤┬┴┼╇╈╋═║╭╮╯╰")
ROOT = Path(__file__).resolve().parents[2]


def _ws(name: str, namespace: str = "default", ready: bool = True) -> dict:
    status = "True" if ready else "False"
    return {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-01-02T03:00:05Z"},
            "resource": {"instanceType": "Standard_NC24ads_A100_v4"},
            "status": {"conditions": [{"type": "ResourceReady", "status": status},
                                      {"type": "InferenceReady", "status": status},
                                      {"type": "WorkspaceSucceeded", "status": status}]}}


def _pod(ws: str, port: int) -> dict:
    return {"metadata": {"name": f"{ws}-abcdef12-0", "namespace": "default", "labels": {"kaito.sh/workspace": ws},
                         "annotations": {"kaito.sh/local-ports": json.dumps({"5000": port})}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}


def test_plain_table_is_kubectl_columns():
    text = common.format_plain_table(["NAME", "A LONG HEADER", "X"], [["a-very-long-name-indeed", "1", ""],
                                                                      ["b", "22", "z"]])
    lines = text.splitlines()
    assert lines[0] == "NAME                      A LONG HEADER   X"
    assert lines[1] == "a-very-long-name-indeed   1"  # trailing blanks trimmed, full value kept
    assert lines[2].index("22") == lines[0].index("A LONG") and lines[2].endswith("z")
    assert not BOX & set(text)


def test_models_piped_shows_full_values_and_no_box():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "40"})  # a narrow "terminal" changes nothing
    assert result.exit_code == 0, result.output
    assert not BOX & set(result.output)
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "PARAMETERS", "GPU", "MEMORY", "MIN", "GPUS", "RUNTIMES", "TUNING", "ACCESS"]
    longest = max((p.name for p in presets.all_presets()), key=len)
    assert any(line.startswith(longest + " ") for line in lines[1:])
    assert "…" not in result.output


def test_models_other_outputs():
    names = CliRunner().invoke(app, ["models", "-o", "name"]).output.split()
    assert names == [p.name for p in presets.all_presets()]
    as_yaml = yaml.safe_load(CliRunner().invoke(app, ["models", "-o", "yaml"]).output)
    assert [r["name"] for r in as_yaml] == names
    wide = CliRunner().invoke(app, ["models", "-o", "wide"]).output.splitlines()
    assert wide[0].split()[-3:] == ["HF", "ID", "REVISION"]


def test_print_table_on_a_terminal_is_rich(monkeypatch, capsys):
    monkeypatch.setattr(common, "output_is_terminal", lambda: True)
    common.print_table(["NAME", "AGE"], [["phi", "3m"]])
    out = capsys.readouterr().out
    assert BOX & set(out) and "phi" in out


def test_live_table_puts_every_value_under_its_header():
    workspaces = [_ws("phi-3"), _ws("falcon", ready=False)]
    pods = [_pod("phi-3", 41234)]
    console = Console(file=io.StringIO(), width=220, record=True, color_system=None)
    console.print(local.build_live_table(workspaces, pods, caption="dashboard: http://127.0.0.1:8470/"))
    lines = console.export_text().splitlines()
    header = next(line for line in lines if "NAMESPACE" in line)
    headers = [cell.strip() for cell in header.split("┃")[1:-1]]
    assert headers == list(local.LIVE_COLUMNS)
    rows = {}
    for line in lines:
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == len(headers) and cells[1]:
            rows[cells[1]] = dict(zip(headers, cells, strict=True))
    age = rows["phi-3"]["AGE"]
    assert rows["phi-3"] == {"NAMESPACE": "default", "NAME": "phi-3", "INSTANCE": "Standard_NC24ads_A100_v4",
                             "RESOURCE": "True", "INFERENCE": "True", "JOB": "", "SUCCEEDED": "True", "AGE": age,
                             "PODS": "phi-3-abcdef12-0:Running", "ENDPOINT": "http://127.0.0.1:41234"}
    assert age.endswith(("s", "m", "h", "d"))
    assert rows["falcon"]["PODS"] == "-" and rows["falcon"]["ENDPOINT"] == "-" and rows["falcon"]["SUCCEEDED"] == "False"
    # Every row has exactly as many cells as there are headers (nothing spills into a blank column).
    for line in lines:
        if "│" in line:
            assert len(line.split("│")) == len(header.split("┃")), line


def test_one_runtime_registry_for_render_operator_and_chart():
    values = yaml.safe_load((ROOT / "charts/kaito/values.yaml").read_text())
    assert values["runtimeImage"]["registry"] == images.DEFAULT_REGISTRY
    from kaito.controller.settings import Settings

    assert Settings().image_registry == images.DEFAULT_REGISTRY
    help_text = CliRunner().invoke(app, ["operator", "--help"], env={"COLUMNS": "300"}).output
    assert images.DEFAULT_REGISTRY in help_text
    ws = ("apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata: {name: phi}\n"
          "resource: {instanceType: Standard_NC24ads_A100_v4, labelSelector: {matchLabels: {a: b}}}\n"
          "inference: {preset: {name: phi-3-mini-4k-instruct}}\n")
    rendered = CliRunner().invoke(app, ["render", "-f", "-"], input=ws)
    assert rendered.exit_code == 0, rendered.output
    assert f"image: {images.DEFAULT_REGISTRY}/kaito-runtime:" in rendered.stdout


def test_dashboard_port_default_is_the_operators():
    from kaito.operator.dashboard import server

    assert local.DEFAULT_DASHBOARD_PORT == server.DEFAULT_PORT
