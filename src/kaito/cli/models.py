"""`kaito models`: list the model presets the catalog knows, as a table or JSON.

Thin: the rows come from `build_model_rows`, a pure view of the catalog, so the table and the JSON
always show the same facts. Imports nothing heavy (no torch, no transformers).
"""

from __future__ import annotations

import json
from enum import StrEnum

import typer

from kaito.catalog import presets


class OutputFormat(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


def build_model_rows() -> list[dict]:
    rows = []
    for p in presets.all_presets():
        rows.append({
            "name": p.name,
            "hf_id": p.hf_id,
            "revision": p.hf.revision if p.hf else None,
            "parameters_b": p.parameters_b,
            "gpu_memory_gib": p.gpu.total_memory_gib,
            "min_gpus": p.gpu.count,
            "runtimes": list(p.runtimes),
            "tuning": sorted(p.tuning_methods),
            "access": p.access,
            "deprecated": p.deprecated,
        })
    return rows


def _params(b: float | None) -> str:
    return f"{b:g}B" if b is not None else "-"


def models(
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o", help="table, wide, json, yaml or name"),
) -> None:
    """List the model presets: parameters, GPU memory, minimum GPUs, runtimes, tuning methods."""
    from kaito.cli.common import print_table

    try:
        rows = build_model_rows()
    except presets.PresetFileError as exc:
        typer.echo(f"kaito models: {exc}", err=True)
        raise typer.Exit(1) from None
    if output is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if output is OutputFormat.yaml:
        import yaml

        typer.echo(yaml.safe_dump(rows, sort_keys=False), nl=False)
        return
    if output is OutputFormat.name:
        typer.echo("\n".join(r["name"] for r in rows))
        return
    headers = ["NAME", "PARAMETERS", "GPU MEMORY", "MIN GPUS", "RUNTIMES", "TUNING", "ACCESS"]
    if output is OutputFormat.wide:
        headers += ["HF ID", "REVISION"]
    table = []
    for r in rows:
        # Lists are joined with bare commas (kubectl's habit): one column stays one word for awk/cut.
        row = [r["name"] + (" (deprecated)" if r["deprecated"] else ""), _params(r["parameters_b"]),
               presets.format_gib(r["gpu_memory_gib"]), str(r["min_gpus"]), ",".join(r["runtimes"]),
               ",".join(r["tuning"]) or "-", r["access"]]
        if output is OutputFormat.wide:
            row += [r["hf_id"] or "-", r["revision"] or "-"]
        table.append(row)
    print_table(headers, table, title="KAITO model presets")


def register(app: typer.Typer) -> None:
    app.command("models")(models)
