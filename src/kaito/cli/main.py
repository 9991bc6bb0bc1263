"""Entry point of the `kaito` command.

Each command group lives in its own module with a `register(app)` function, so rooms can grow
their commands without touching each other. Modules here must import heavy libraries (torch,
transformers, the runtime) inside their command functions only: `kaito --help` stays fast.
"""

from __future__ import annotations

import importlib

import typer

# Command modules, in the order their commands appear in `kaito --help`.
COMMAND_MODULES = (
    "kaito.cli.validate",
    "kaito.cli.models",
    "kaito.cli.crd",
    "kaito.cli.render",
    "kaito.cli.serve",
    "kaito.cli.tune",
    "kaito.cli.rag",
    "kaito.cli.local",
    "kaito.cli.workspace_apply",
    "kaito.cli.workspaces",
    "kaito.cli.inferencesets",
    "kaito.cli.workspace_access",
    "kaito.cli.ui",
    "kaito.cli.store",
    "kaito.cli.operator",
)

app = typer.Typer(
    name="kaito",
    help="KAITO in Python: validate, render and run Workspaces, locally or on a cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print kaito's version."""
    from kaito import __version__

    typer.echo(__version__)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command group is not built yet
                continue
            raise
        module.register(app)


_register_all()


def run() -> None:
    """The command; an error of the local state (`KAITO_HOME`) or the file system that a command did
    not answer itself is still one line and exit 1, never a traceback."""
    import sys

    from kaito.cluster import errors

    try:
        app()
    except errors.LocalStateError as exc:
        typer.echo(f"kaito: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        if exc.filename is None:
            raise
        typer.echo(f"kaito: cannot use {exc.filename}: {exc.strerror or exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
