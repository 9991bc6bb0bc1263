"""`kaito rag …`: the RAG service's commands. Today `kaito rag serve`; `index` and `ask` join it later.

Thin on purpose: `serve` forwards every argument to `kaito.runtime.rag`, imported only when the
command runs, so `kaito --help` never loads torch or FAISS.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    rag = typer.Typer(name="rag", help="The RAG service: index documents, retrieve, chat with context.",
                      no_args_is_help=True)

    @rag.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )
    def serve(ctx: typer.Context) -> None:
        """Run the RAG service (KAITO's RAGEngine API; `kaito rag serve --help` for the flags)."""
        from kaito.runtime.rag.__main__ import main

        raise typer.Exit(main(list(ctx.args)))

    app.add_typer(rag)
