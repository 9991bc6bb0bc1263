"""`kaito serve`: run the model server (the runtime's own flags pass through unchanged).

Thin on purpose: it forwards every argument to `kaito.runtime.inference`, imported only when the
command runs, so `kaito --help` never loads torch.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )
    def serve(ctx: typer.Context) -> None:
        """Serve a model: KAITO /chat and the OpenAI API (`kaito serve --help` for the flags)."""
        from kaito.runtime.inference.__main__ import main

        raise typer.Exit(main(list(ctx.args)))
