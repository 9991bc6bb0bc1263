"""`kaito crd [KIND]`: print a CustomResourceDefinition (`kubectl apply -f -` ready).

KIND is workspace (the default), inferenceset, ragengine, or all (every CRD, as separate documents).
"""

from __future__ import annotations

import typer

KINDS = ("workspace", "inferenceset", "ragengine")


def build_crds(kind: str = "workspace") -> list[dict]:
    from kaito.api import crd, crd_kinds

    builders = {"workspace": crd.build_crd, "inferenceset": crd_kinds.build_inferenceset_crd,
                "ragengine": crd_kinds.build_ragengine_crd}
    names = KINDS if kind == "all" else (kind,)
    return [builders[name]() for name in names]


def render_crd_yaml(kind: str = "workspace") -> str:
    import yaml

    return yaml.safe_dump_all(build_crds(kind), sort_keys=False, width=120)


def register(app: typer.Typer) -> None:
    @app.command("crd")
    def crd(kind: str = typer.Argument("workspace", help=f"{', '.join(KINDS)} or all")) -> None:
        """Print the CRD of workspaces.kaito.sh (or inferencesets, ragengines, all) as YAML."""
        kind = kind.lower().removesuffix("s")
        if kind not in (*KINDS, "all"):
            typer.echo(f"kaito crd: unknown kind {kind!r}: use {', '.join(KINDS)} or all", err=True)
            raise typer.Exit(2)
        typer.echo(render_crd_yaml(kind), nl=False)
