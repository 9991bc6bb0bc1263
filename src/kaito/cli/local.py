"""`kaito up` and `kaito down`: start and stop the local control plane of `$KAITO_HOME`.

`kaito up` runs in the foreground with a live table of Workspaces and their pods; `--detach` starts
the same process in the background (its own session, output to `$KAITO_HOME/logs/controlplane.log`)
and returns once it is serving. `kaito down` stops it with SIGTERM, which stops every pod process it
started, and cleans up any pod process a crashed control plane may have left. The process itself is
`kaito.operator.controlplane`; this module parses flags, prints and draws the table.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import typer

from kaito.cli.common import HomeOption, build_row, local_paths


def _build_table(workspaces: list[dict], pods: list[dict]):
    from rich.table import Table

    from kaito.api import labels
    from kaito.cluster.local import runner

    table = Table(title="kaito local cluster", expand=False)
    for col in ("NAMESPACE", "NAME", "INSTANCE", "RESOURCE", "INFERENCE", "JOB", "SUCCEEDED", "PODS", "ENDPOINT"):
        table.add_column(col)
    for ws in workspaces:
        meta = ws["metadata"]
        mine = [p for p in pods
                if (p["metadata"].get("labels") or {}).get(labels.LABEL_WORKSPACE_NAME) == meta["name"]
                and p["metadata"].get("namespace") == meta.get("namespace")]
        pod_text = ", ".join(f"{p['metadata']['name']}:{(p.get('status') or {}).get('phase', '?')}" for p in mine)
        row = build_row(ws)
        table.add_row(meta.get("namespace", ""), meta["name"], *row[1:], pod_text or "-",
                      runner.find_local_endpoint(mine) or "-")
    return table


async def _foreground(home: Path, table: bool) -> int:
    from kaito.cluster import protocol
    from kaito.operator import controlplane

    plane = controlplane.ControlPlane(home)
    try:
        plane.lock()
    except controlplane.AlreadyRunning as exc:
        typer.echo(f"kaito up: a local control plane already runs for {home} (pid {exc})", err=True)
        return 1
    plane.paths.log.parent.mkdir(parents=True, exist_ok=True)
    controlplane.configure_logging(plane.paths.log if table else None)
    stop = asyncio.Event()
    controlplane.install_local_stop_signals(stop)
    if not table:
        await plane.run(stop)
        return 0
    from rich.console import Console
    from rich.live import Live

    async def refresh(live: Live) -> None:
        while not stop.is_set():
            if plane.cluster is not None:
                try:
                    wss = (await plane.cluster.list(protocol.WORKSPACE)).items
                    pods = (await plane.cluster.list(protocol.POD)).items
                    live.update(_build_table(wss, pods))
                except Exception:  # noqa: BLE001 - the table is cosmetic; never stop the plane for it
                    pass
            await asyncio.sleep(1.0)

    console = Console()
    console.print(f"kaito: local control plane for {home} (pid {os.getpid()}); Ctrl-C stops it and its pods; "
                  f"log: {plane.paths.log}")
    with Live(_build_table([], []), console=console, refresh_per_second=2) as live:
        updater = asyncio.create_task(refresh(live))
        try:
            await plane.run(stop)
        finally:
            updater.cancel()
    return 0


def _detach(paths, timeout_s: float = 60.0) -> int:
    from kaito.operator import controlplane

    started = controlplane.start_detached(paths, timeout_s)
    if started.pid is not None:
        typer.echo(f"kaito: local control plane up (pid {started.pid}); state in {paths.home}; log: {paths.log}")
        return 0
    if started.exit_code is not None:
        typer.echo(f"kaito up: the control plane exited with code {started.exit_code}; see {paths.log}", err=True)
    else:
        typer.echo(f"kaito up: the control plane did not start within {timeout_s:.0f}s; see {paths.log}", err=True)
    return 1


def run_down(paths, timeout_s: float = 30.0) -> int:
    from kaito.operator import controlplane

    stopped = controlplane.stop(paths, timeout_s)
    note = f"; stopped {len(stopped.leftovers)} leftover pod process(es)" if stopped.leftovers else ""
    if stopped.pid is None:
        typer.echo(f"kaito: no local control plane runs for {paths.home}{note}")
        return 0
    if stopped.killed:
        typer.echo(f"kaito down: the control plane did not stop within {timeout_s:.0f}s; killed it", err=True)
    typer.echo(f"kaito: local control plane stopped (pid {stopped.pid}){note}")
    return 0


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up(
        detach: bool = typer.Option(False, "--detach", "-d", help="run in the background; stop with `kaito down`"),
        no_table: bool = typer.Option(False, "--no-table", help="plain log lines instead of the live table"),
        home: Path = HomeOption,
    ) -> None:
        """Start the local cluster: store, controller, node provisioner and pod runner on this machine."""
        from kaito.operator import controlplane

        paths = local_paths(home)
        if detach:
            pid = controlplane.running_pid(paths)
            if pid:
                typer.echo(f"kaito: a local control plane already runs for {paths.home} (pid {pid})")
                raise typer.Exit(0)
            raise typer.Exit(_detach(paths))
        table = not no_table and sys.stdout.isatty()
        raise typer.Exit(asyncio.run(_foreground(paths.home, table)))

    @app.command("down")
    def down(home: Path = HomeOption) -> None:
        """Stop the local control plane and every process it started."""
        raise typer.Exit(run_down(local_paths(home)))
