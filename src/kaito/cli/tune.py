"""`kaito tune`: run the LoRA / QLoRA trainer on this machine.

Thin: every argument goes unchanged to `kaito.runtime.tuning` (the same parser as
`python -m kaito.runtime.tuning`, so `kaito tune --help` lists the real flags). The runtime and
torch are imported only when the command runs, so `kaito --help` stays fast.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )
    def tune(ctx: typer.Context) -> None:
        """Fine-tune a model into an adapter (--config, --model, --data, --output, --method lora|qlora)."""
        from kaito.runtime.tuning.__main__ import main

        raise typer.Exit(main(list(ctx.args), prog="kaito tune"))
