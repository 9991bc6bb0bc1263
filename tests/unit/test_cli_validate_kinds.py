"""`kaito validate` on InferenceSet and RAGEngine files: every bad input named by file, line and field,
exit 1, no traceback — contradicting thresholds, max below min, a template that is not a valid
Workspace, an unknown vector DB engine — and good files of both kinds and versions pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kaito.cli.main import app

SET = """\
apiVersion: kaito.sh/v1beta1
kind: InferenceSet
metadata:
  name: phi-4
  annotations:
    scaledobject.kaito.sh/auto-provision: "true"
    scaledobject.kaito.sh/metrics: |
      - name: vllm:num_requests_waiting
        type: gauge
        upthreshold: 10
        downthreshold: 2
    scaledobject.kaito.sh/min-replicas: "2"
    scaledobject.kaito.sh/max-replicas: "5"
spec:
  replicas: 2
  labelSelector:
    matchLabels:
      apps: phi-4
  template:
    resource:
      instanceType: Standard_NC24ads_A100_v4
    inference:
      preset:
        name: phi-4-mini-instruct
"""
RAG = """\
apiVersion: kaito.sh/v1beta1
kind: RAGEngine
metadata:
  name: docs
spec:
  storage:
    vectorDB:
      engine: faiss
      url: ""
  embedding:
    local:
      modelID: BAAI/bge-small-en-v1.5
  inferenceService:
    url: http://phi-4/v1/chat/completions
    contextWindowSize: 4096
"""
RAG_ALPHA = RAG.replace("kaito.sh/v1beta1", "kaito.sh/v1alpha1").replace(
    "  storage:\n    vectorDB:\n      engine: faiss\n      url: \"\"\n", "  storage:\n    persistentVolumeClaim: docs\n")

BROKEN = {
    # name: (text, fragments one output line must hold)
    "thresholds": (SET.replace("downthreshold: 2", "downthreshold: 20"),
                   ["thresholds.yaml:7:", "error:", "metadata.annotations[scaledobject.kaito.sh/metrics][0].downthreshold",
                    "downthreshold (20) is above upthreshold (10)"]),
    "max-below-min": (SET.replace('max-replicas: "5"', 'max-replicas: "1"').replace('min-replicas: "2"',
                                                                                     'min-replicas: "3"'),
                      ["max-below-min.yaml:13:", "metadata.annotations[scaledobject.kaito.sh/max-replicas]",
                       "must be at least 2"]),
    "max-under-min": (SET.replace('max-replicas: "5"', 'max-replicas: "2"').replace('min-replicas: "2"',
                                                                                     'min-replicas: "4"'),
                      ["max-under-min.yaml:13:", "max-replicas (2) is below min-replicas (4)"]),
    "metrics-garbage": (SET.replace("      - name: vllm:num_requests_waiting\n", "      - name: [\n"),
                        ["metrics-garbage.yaml:7:", "metadata.annotations[scaledobject.kaito.sh/metrics]",
                         "not valid YAML or JSON"]),
    "template": (SET.replace("name: phi-4-mini-instruct", "name: gpt-17"),
                 ["template.yaml:24:", "spec.template.inference.preset.name", "gpt-17"]),
    "template-neither": (SET.replace("      preset:\n        name: phi-4-mini-instruct\n", "      {}\n"),
                         ["template-neither.yaml:22:", "spec.template.inference", "either preset or template"]),
    "replicas": (SET.replace("replicas: 2", "replicas: -1"), ["replicas.yaml:15:", "spec.replicas", "negative"]),
    "engine": (RAG.replace("engine: faiss", "engine: milvus"),
               ["engine.yaml:8:", "spec.storage.vectorDB.engine", "unsupported vector DB engine 'milvus'"]),
    "remote-url": (RAG.replace("    local:\n      modelID: BAAI/bge-small-en-v1.5\n", "    remote:\n      url: nope\n"),
                   ["remote-url.yaml:12:", "spec.embedding.remote.url", "not an http(s) URL"]),
    "alpha-url": (RAG_ALPHA.replace("    url: http://phi-4/v1/chat/completions\n", ""),
                  ["alpha-url.yaml:11:", "spec.inferenceService.url", "required in kaito.sh/v1alpha1"]),
}


def _run(tmp_path: Path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return CliRunner().invoke(app, ["validate", "-f", *(str(tmp_path / n) for n in files)])


def test_good_files_of_both_kinds_and_versions_pass(tmp_path):
    result = _run(tmp_path, {"set.yaml": SET, "rag.yaml": RAG, "rag-alpha.yaml": RAG_ALPHA})
    assert result.exit_code == 0, result.output
    assert "0 workspace(s), 1 inferenceset(s), 2 ragengine(s) in 3 file(s): valid" in result.output
    assert "error" not in result.output


@pytest.mark.parametrize("name", BROKEN)
def test_bad_input_names_file_line_and_field(tmp_path, name):
    text, fragments = BROKEN[name]
    result = _run(tmp_path, {f"{name}.yaml": text})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if fragments[0] in line]
    assert lines, result.output
    assert all(f in lines[0] for f in fragments), lines


def test_the_real_command_exits_1_with_the_same_words(tmp_path):
    """The installed `kaito` entry point, as a user runs it (no CliRunner in between)."""
    (tmp_path / "bad.yaml").write_text(BROKEN["engine"][0] + "---\n" + BROKEN["thresholds"][0])
    kaito = Path(sys.executable).with_name("kaito")
    result = subprocess.run([str(kaito), "validate", "-f", str(tmp_path / "bad.yaml")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert f"{tmp_path / 'bad.yaml'}:8: error: spec.storage.vectorDB.engine: unsupported vector DB engine" in result.stdout
    assert "metadata.annotations[scaledobject.kaito.sh/metrics][0].downthreshold" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_the_examples_of_both_kinds_validate_without_warnings():
    examples = Path(__file__).resolve().parents[2] / "examples"
    result = CliRunner().invoke(app, ["validate", "-f", str(examples / "inferenceset"), "-f",
                                      str(examples / "ragengine")])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    count_sets = len(list((examples / "inferenceset").glob("*.yaml")))
    count_rags = len(list((examples / "ragengine").glob("*.yaml")))
    assert f"{count_sets} inferenceset(s), {count_rags} ragengine(s)" in result.output
