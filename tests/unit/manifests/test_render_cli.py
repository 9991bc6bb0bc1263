"""`kaito render -f FILE` as a user runs it: YAML out on success; on bad input, messages and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kaito.cli.main import app
from tests.unit.manifests import cases

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ws.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _invoke(*args: str):
    return CliRunner().invoke(app, ["render", *args])


def test_render_prints_every_object_as_multi_document_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\n" + cases.CASES["inference-multinode-llama-2-13b"])
    result = _invoke("-f", path, "--registry", "r.io/k")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs] == ["NodeClaim", "NodeClaim", "ControllerRevision", "Service", "Service", "StatefulSet"]


def test_render_byo_and_aws_options(tmp_path: Path) -> None:
    path = _write(tmp_path, "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\n" + cases.AWS_CASES["nodeclaims-aws-count-3"])
    result = _invoke("-f", path, "--cloud", "aws", "--tag", "9.9")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert sum(d["kind"] == "NodeClaim" for d in docs) == 3
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"].endswith("/kaito-runtime:9.9")
    result = _invoke("-f", path, "--cloud", "aws", "--byo")
    assert "NodeClaim" not in {d["kind"] for d in yaml.safe_load_all(result.stdout)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata: {name: w}\nresource: [\n", "YAML syntax error"),
        (
            "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata: {name: w}\n"
            "resource: {labelSelector: {matchLabels: {a: b}}}\ninference: {preset: {name: no-such-model}}\n",
            "inference.preset.name",
        ),
        (
            "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata: {name: w}\n"
            "resource: {labelSelector: {matchLabels: {a: b}}, bogus: 1}\ninference: {preset: {name: falcon-7b}}\n",
            "resource.bogus",
        ),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", "no kaito.sh Workspace"),
    ],
)
def test_bad_input_exits_1_with_a_message_and_prints_no_yaml(tmp_path: Path, text: str, expected: str) -> None:
    result = _invoke("-f", _write(tmp_path, text))
    assert result.exit_code == 1
    assert expected in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_one_bad_workspace_means_nothing_is_printed(tmp_path: Path) -> None:
    good = "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\n" + cases.CASES["inference-falcon-7b"]
    bad = "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata: {name: w}\ninference: {preset: {name: falcon-7b}}\n"
    result = _invoke("-f", _write(tmp_path, good + "---\n" + bad))
    assert result.exit_code == 1 and result.stdout == ""


def test_missing_file_is_named(tmp_path: Path) -> None:
    result = _invoke("-f", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1 and "nope.yaml: cannot read" in result.stderr


def test_every_example_renders() -> None:
    # Workspace files only (examples/inferenceset and examples/ragengine hold other kinds), v1alpha1
    # and v1beta1 alike.
    examples = sorted(p for p in EXAMPLES.rglob("*.yaml") if "\nkind: Workspace\n" in p.read_text())
    assert any("v1beta1" in p.parts for p in examples) and any("v1beta1" not in p.parts for p in examples)
    result = _invoke(*(arg for p in examples for arg in ("-f", str(p))))
    assert result.exit_code == 0, result.output
    workloads = [d for d in yaml.safe_load_all(result.stdout) if d["kind"] in {"Deployment", "StatefulSet", "Job"}]
    assert len(workloads) == len(examples)


def test_render_reads_stdin() -> None:
    text = "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\n" + cases.CASES["inference-template"]
    result = CliRunner().invoke(app, ["render", "-f", "-"], input=text)
    assert result.exit_code == 0, result.output
    assert [d["kind"] for d in yaml.safe_load_all(result.stdout)][-1] == "Deployment"


def test_unknown_cloud_is_refused() -> None:
    result = _invoke("-f", "-", "--cloud", "gcp")
    assert result.exit_code == 1 and "--cloud" in result.stderr
