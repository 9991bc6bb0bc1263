"""`kaito crd`: print the Workspace CustomResourceDefinition (`kubectl apply -f -` ready)."""

from __future__ import annotations

import typer


def render_crd_yaml() -> str:
    import yaml

    from kaito.api.crd import build_crd

    return yaml.safe_dump(build_crd(), sort_keys=False, width=120)


def register(app: typer.Typer) -> None:
    @app.command("crd")
    def crd() -> None:
        """Print the workspaces.kaito.sh CRD (apiextensions.k8s.io/v1) as YAML."""
        typer.echo(render_crd_yaml(), nl=False)
