"""The operator side loads without torch: importing the API, the catalog or the CLI pulls in no ML stack.

Checked in a fresh interpreter, because this test session may already have torch loaded by others.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "accelerate", "datasets", "bitsandbytes", "vllm")

MODULES = [
    "kaito.api",
    "kaito.api.v1alpha1",
    "kaito.api.v1beta1",
    "kaito.api.conversion",
    "kaito.api.admission",
    "kaito.api.validation",
    "kaito.api.documents",
    "kaito.api.crd",
    "kaito.catalog",
    "kaito.catalog.facts",
    "kaito.webhook.conversion",
    "kaito.webhook.mutation",
    "kaito.cluster.served",
    "kaito.controller.recheck",
    "kaito.cli.main",
    "kaito.cli.validate",
    "kaito.operator.process",
    "kaito.operator.controlplane",
]

# One fresh interpreter imports the modules in order and reports, after each, what heavy packages
# are loaded: the first module whose list is non-empty is the culprit.
PROBE = """
import importlib, json, sys
report = {{}}
for name in {modules!r}:
    importlib.import_module(name)
    report[name] = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(json.dumps(report))
"""


def test_imports_load_no_ml_stack() -> None:
    code = PROBE.format(modules=MODULES, heavy=set(HEAVY))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert list(report) == MODULES
    assert {name: loaded for name, loaded in report.items() if loaded} == {}


def test_validate_command_runs_without_ml_stack(tmp_path) -> None:
    """Running `kaito validate` (not just importing it) also keeps torch out."""
    code = (
        "import sys, json\n"
        "from kaito.cli.validate import run_validate\n"
        "run_validate(['-'])\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r})))\n"
    )
    doc = "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata: {name: w}\nresource: {labelSelector: {matchLabels: {a: b}}}\ninference: {preset: {name: phi-2}}\n"
    out = subprocess.run(
        [sys.executable, "-c", code], input=doc, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
