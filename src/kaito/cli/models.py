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
    json = "json"


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
    output: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o", help="table or json"),
) -> None:
    """List the model presets: parameters, GPU memory, minimum GPUs, runtimes, tuning methods."""
    try:
        rows = build_model_rows()
    except presets.PresetFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if output is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="KAITO model presets")
    for column in ("NAME", "PARAMETERS", "GPU MEMORY", "MIN GPUS", "RUNTIMES", "TUNING", "ACCESS"):
        table.add_column(column, no_wrap=column == "NAME")
    for r in rows:
        name = r["name"] + (" (deprecated)" if r["deprecated"] else "")
        table.add_row(
            name,
            _params(r["parameters_b"]),
            presets.format_gib(r["gpu_memory_gib"]),
            str(r["min_gpus"]),
            ", ".join(r["runtimes"]),
            ", ".join(r["tuning"]) or "-",
            r["access"],
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
