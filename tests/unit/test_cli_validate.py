"""`kaito validate` and `kaito crd` as a user runs them: file, line and field named; exit 1; no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kaito.api.crd import build_crd
from kaito.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

GOOD = """\
apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: workspace-phi-3
resource:
  instanceType: Standard_NC6s_v3
  labelSelector:
    matchLabels:
      apps: phi-3
inference:
  preset:
    name: phi-3-mini-4k-instruct
"""

BROKEN = {
    # name: (text, expected fragments of one output line)
    "syntax": (
        "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata:\n  name: [oops\n",
        ["syntax.yaml:", "YAML syntax error"],
    ),
    "wrong-type": (
        GOOD.replace("instanceType: Standard_NC6s_v3", "count: two\n  instanceType: Standard_NC6s_v3"),
        ["wrong-type.yaml:6:", "resource.count", "integer"],
    ),
    "unknown-field": (
        GOOD.replace("    name: phi-3-mini-4k-instruct", "    name: phi-3-mini-4k-instruct\n    size: big"),
        ["unknown-field.yaml:13:", "inference.preset.size", "unknown field"],
    ),
    "no-selector": (
        GOOD.replace("  labelSelector:\n    matchLabels:\n      apps: phi-3\n", ""),
        ["no-selector.yaml:5:", "resource.labelSelector", "missing"],
    ),
    "both": (
        GOOD
        + "tuning:\n  method: lora\n  preset: {name: phi-3-mini-4k-instruct}\n  input: {urls: ['https://e.com/d']}\n  output: {image: r.io/a/b:1, imagePushSecret: s}\n",
        ["both.yaml:13:", "tuning", "not both"],
    ),
    "bad-preset": (
        GOOD.replace("phi-3-mini-4k-instruct", "gpt-17"),
        ["bad-preset.yaml:12:", "inference.preset.name", "gpt-17"],
    ),
    "too-small": (
        GOOD.replace("Standard_NC6s_v3", "Standard_NC6").replace("phi-3-mini-4k-instruct", "falcon-40b"),
        ["too-small.yaml:6:", "resource.instanceType", "Insufficient"],
    ),
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_examples_all_validate(runner: CliRunner) -> None:
    # Every example: Workspaces v1alpha1 (examples/inference, examples/tuning) and v1beta1
    # (examples/v1beta1), InferenceSets and RAGEngines.
    result = runner.invoke(app, ["validate", "-f", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    files = list(EXAMPLES.rglob("*.yaml"))
    count = {kind: sum(f"\nkind: {kind}\n" in p.read_text() for p in files)
             for kind in ("Workspace", "InferenceSet", "RAGEngine")}
    assert len(list((EXAMPLES / "v1beta1").rglob("*.yaml"))) >= 8
    assert (f"{count['Workspace']} workspace(s), {count['InferenceSet']} inferenceset(s), "
            f"{count['RAGEngine']} ragengine(s) in {len(files)} file(s): valid") in result.output


def test_examples_cover_every_preset() -> None:
    v032 = [
        "falcon-7b", "falcon-7b-instruct", "falcon-40b", "falcon-40b-instruct", "mistral-7b", "mistral-7b-instruct",
        "phi-2", "phi-3-mini-4k-instruct", "phi-3-mini-128k-instruct", "phi-3-medium-4k-instruct",
        "phi-3-medium-128k-instruct", "llama-2-7b", "llama-2-7b-chat", "llama-2-13b", "llama-2-13b-chat",
        "llama-2-70b", "llama-2-70b-chat",
    ]  # fmt: skip
    new = [
        "phi-3.5-mini-instruct", "phi-4", "phi-4-mini-instruct", "llama-3.1-8b-instruct", "mistral-7b-instruct-v0.3",
        "qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct", "qwen2.5-7b-instruct", "qwen2.5-coder-7b-instruct",
    ]  # fmt: skip
    for name in v032 + new:
        doc = yaml.safe_load((EXAMPLES / "inference" / f"{name}.yaml").read_text())
        assert doc["inference"]["preset"]["name"] == name
        if name.startswith("llama-2"):
            assert doc["inference"]["preset"]["accessMode"] == "private"
    adapters = [yaml.safe_load(p.read_text()) for p in EXAMPLES.glob("inference/*with-adapters.yaml")]
    assert {d["inference"]["preset"]["name"].split("-")[0] for d in adapters} == {"falcon", "phi"}
    tuning = yaml.safe_load((EXAMPLES / "tuning" / "phi-3-mini-128k-instruct-qlora.yaml").read_text())
    assert tuning["tuning"]["method"] == "qlora"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_input_names_file_line_and_field(name: str, runner: CliRunner, tmp_path: Path) -> None:
    text, fragments = BROKEN[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 1, result.output
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    lines = [line for line in result.output.splitlines() if all(f in line for f in fragments)]
    assert lines, f"no line with {fragments} in:\n{result.output}"


def test_stdin_multi_document_and_mixed_files(runner: CliRunner, tmp_path: Path) -> None:
    bad = GOOD.replace("workspace-phi-3", "Bad_Name")
    result = runner.invoke(app, ["validate", "-f", "-"], input=GOOD + "---\n" + bad)
    assert result.exit_code == 1
    assert "<stdin>:17: error: metadata.name:" in result.output
    assert "2 workspace(s) in 1 file(s): invalid" in result.output
    good_file = tmp_path / "good.yaml"
    good_file.write_text(GOOD)
    result = runner.invoke(app, ["validate", "-f", str(good_file), "-f", str(good_file)])
    assert result.exit_code == 0, result.output


def test_missing_file_and_empty_dir(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "-f", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1 and "nope.yaml: cannot read" in result.output
    result = runner.invoke(app, ["validate", "-f", str(tmp_path)])
    assert result.exit_code == 1 and "no .yaml" in result.output


def test_tuning_configmap_in_same_file_is_checked(runner: CliRunner, tmp_path: Path) -> None:
    tuning = yaml.safe_load((EXAMPLES / "tuning" / "phi-3-mini-128k-instruct-qlora.yaml").read_text())
    tuning["tuning"]["config"] = "my-qlora"
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "my-qlora"},
        "data": {"training_config.yaml": "training_config:\n  QuantizationConfig: {load_in_4bit: false}\n"},
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump_all([tuning, configmap]))
    result = runner.invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 1
    assert "tuning.config: method qlora needs load_in_4bit or load_in_8bit" in result.output


def test_crd_command_prints_the_generated_crd(runner: CliRunner) -> None:
    result = runner.invoke(app, ["crd"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output) == build_crd()


def test_local_model_directory_sized_from_its_files(runner: CliRunner, tmp_path: Path) -> None:
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with open(model / "model.safetensors", "wb") as f:  # sparse: 20 GiB of size, no disk used
        f.truncate(20 * 1024**3)
    doc = GOOD.replace("phi-3-mini-4k-instruct", str(model))
    small, large = tmp_path / "small.yaml", tmp_path / "large.yaml"
    small.write_text(doc)
    large.write_text(doc.replace("Standard_NC6s_v3", "Standard_NC24ads_A100_v4"))
    result = runner.invoke(app, ["validate", "-f", str(small)])
    assert result.exit_code == 1 and "resource.instanceType: Insufficient total GPU memory" in result.output
    result = runner.invoke(app, ["validate", "-f", str(large)])
    assert result.exit_code == 0, result.output


def test_several_files_after_one_flag_as_a_shell_glob_gives_them(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("phi-3-mini-4k-instruct", "no-such-model"))
    result = CliRunner().invoke(app, ["validate", "-f", str(good), str(bad)])
    assert result.exit_code == 1
    assert "bad.yaml" in result.output and "inference.preset.name" in result.output
    assert CliRunner().invoke(app, ["validate", "-f", str(good), str(good)]).exit_code == 0


def test_no_file_at_all_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 2
    assert "-f FILE" in result.output


def test_local_urls_only_with_allow_local_urls(runner: CliRunner, tmp_path: Path) -> None:
    """Strict by default, as the webhook; `--allow-local-urls` is the local cluster's answer."""
    tuning = yaml.safe_load((EXAMPLES / "tuning" / "phi-3-mini-128k-instruct-qlora.yaml").read_text())
    tuning["tuning"]["input"] = {"urls": ["http://127.0.0.1:8000/train.jsonl"]}
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(tuning))
    strict = runner.invoke(app, ["validate", "-f", str(path)])
    assert strict.exit_code == 1
    assert "tuning.input.urls[0]" in strict.output and "loopback" in strict.output
    relaxed = runner.invoke(app, ["validate", "--allow-local-urls", "-f", str(path)])
    assert relaxed.exit_code == 0, relaxed.output
    tuning["tuning"]["input"] = {"urls": ["http://169.254.169.254/latest/meta-data"]}
    path.write_text(yaml.safe_dump(tuning))
    metadata = runner.invoke(app, ["validate", "--allow-local-urls", "-f", str(path)])
    assert metadata.exit_code == 1 and "link-local" in metadata.output


CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: my-config\ndata:\n  a: b\n"


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [
        ("empty", "", "the file is empty"),
        ("comments", "# nothing here\n---\n", "the file is empty"),
        ("configmap", CONFIGMAP, "found ConfigMap"),
        ("typo", GOOD.replace("kind: Workspace", "kind: Workspce"), "found Workspce"),
    ],
)
def test_file_without_a_workspace_is_an_error(
    name: str, text: str, why: str, runner: CliRunner, tmp_path: Path
) -> None:
    """A mistyped or empty file must not pass CI as '0 workspace(s): valid'."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(f"{path}: error: no Workspace found")]
    assert len(lines) == 1 and why in lines[0], result.output
    assert "0 workspace(s) in 1 file(s): invalid (1 error(s) in 1 file(s))" in result.output
    result = runner.invoke(app, ["validate", "-f", "-"], input=text)
    assert result.exit_code == 1 and "<stdin>: error: no Workspace found" in result.output


def test_each_file_without_a_workspace_is_named_beside_a_good_one(runner: CliRunner, tmp_path: Path) -> None:
    good, empty = tmp_path / "good.yaml", tmp_path / "empty.yaml"
    good.write_text(GOOD)
    empty.write_text("")
    result = runner.invoke(app, ["validate", "-f", str(good), "-f", str(empty)])
    assert result.exit_code == 1
    assert f"{empty}: error: no Workspace found" in result.output and f"{good}:" not in result.output


def test_configmap_file_beside_a_workspace_file_is_fine(runner: CliRunner, tmp_path: Path) -> None:
    good, configmap = tmp_path / "good.yaml", tmp_path / "cm.yaml"
    good.write_text(GOOD)
    configmap.write_text(CONFIGMAP)
    result = runner.invoke(app, ["validate", "-f", str(good), "-f", str(configmap)])
    assert result.exit_code == 0, result.output
    assert "1 workspace(s) in 2 file(s): valid" in result.output


def test_broken_file_is_not_also_told_it_has_no_workspace(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text(BROKEN["syntax"][0])
    result = runner.invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 1 and "YAML syntax error" in result.output
    assert "no Workspace found" not in result.output


def test_other_kubernetes_objects_beside_a_workspace_are_skipped_not_errors(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A GitOps folder holds Deployments beside Workspaces; a kaito.sh typo is still an error."""
    good, deploy = tmp_path / "good.yaml", tmp_path / "deploy.yaml"
    good.write_text(GOOD)
    deploy.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n")
    result = runner.invoke(app, ["validate", "-f", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"{deploy}: warning: no Workspace found (found Deployment): skipped" in result.output
    typo = tmp_path / "typo.yaml"
    typo.write_text(GOOD.replace("kind: Workspace", "kind: Workspce"))
    result = runner.invoke(app, ["validate", "-f", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{typo}: error: no Workspace found (found Workspce)" in result.output
    alone = runner.invoke(app, ["validate", "-f", str(deploy)])
    assert alone.exit_code == 1 and "error: no Workspace found (found Deployment)" in alone.output
