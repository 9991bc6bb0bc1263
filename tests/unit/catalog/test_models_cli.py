"""`kaito models`: the table and JSON a user sees, and that listing models loads nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from kaito.catalog import presets
from kaito.cli.main import app


def test_json_lists_every_preset():
    result = CliRunner().invoke(app, ["models", "--output", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == [p.name for p in presets.all_presets()]
    falcon = next(r for r in rows if r["name"] == "falcon-40b")
    assert (falcon["parameters_b"], falcon["gpu_memory_gib"], falcon["min_gpus"]) == (41.8, 90, 2)
    assert falcon["runtimes"] == ["transformers", "vllm"] and falcon["tuning"] == ["lora", "qlora"]
    llama = next(r for r in rows if r["name"] == "llama-2-70b")
    assert (llama["access"], llama["tuning"], llama["hf_id"]) == ("private", [], None)


def test_table_columns_and_rows():
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for header in ("NAME", "PARAMETERS", "GPU MEMORY", "MIN GPUS", "RUNTIMES", "TUNING"):
        assert header in result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("phi-4 "))
    assert line.split()[1:3] == ["14.7B", "31Gi"] and "lora,qlora" in line
    assert "phi-2 (deprecated)" in result.output


def test_bad_output_format_is_a_usage_error():
    result = CliRunner().invoke(app, ["models", "--output", "xml"])
    assert result.exit_code == 2


def test_no_torch_or_transformers_loaded():
    code = (
        "import sys; from typer.testing import CliRunner; from kaito.cli.main import app;"
        "import kaito.catalog.facts, kaito.catalog.sizing, kaito.catalog.hub_cache;"
        "r = CliRunner().invoke(app, ['models', '-o', 'json']); assert r.exit_code == 0;"
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'huggingface_hub') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
