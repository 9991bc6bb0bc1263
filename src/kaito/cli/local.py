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

from kaito.cli.common import HomeOption, build_row, local_paths, open_in_browser

# The operator room's default, repeated so `kaito --help` imports nothing of it (a test keeps them equal).
DEFAULT_DASHBOARD_PORT = 8470
DEFAULT_AUTOSCALER_INTERVAL_S = 15.0


LIVE_COLUMNS = ("NAMESPACE", "NAME", "INSTANCE", "RESOURCE", "INFERENCE", "JOB", "SUCCEEDED", "AGE", "PODS",
                "ENDPOINT")


def build_live_rows(workspaces: list[dict], pods: list[dict]) -> list[list[str]]:
    """One row per Workspace, a value for each of `LIVE_COLUMNS` in that order."""
    from kaito.api import labels
    from kaito.cluster.local import runner

    rows = []
    for ws in workspaces:
        meta = ws["metadata"]
        mine = [p for p in pods
                if (p["metadata"].get("labels") or {}).get(labels.LABEL_WORKSPACE_NAME) == meta["name"]
                and p["metadata"].get("namespace") == meta.get("namespace")]
        pod_text = ", ".join(f"{p['metadata']['name']}:{(p.get('status') or {}).get('phase', '?')}" for p in mine)
        name, instance, *conditions, age = build_row(ws)
        rows.append([meta.get("namespace", ""), name, instance, *conditions, age, pod_text or "-",
                     runner.find_local_endpoint(mine) or "-"])
    return rows


def build_live_table(workspaces: list[dict], pods: list[dict], caption: str | None = None):
    """The live table of `kaito up` in the foreground."""
    from rich.table import Table

    table = Table(title="kaito local cluster", caption=caption, expand=False)
    for col in LIVE_COLUMNS:
        table.add_column(col)
    for row in build_live_rows(workspaces, pods):
        table.add_row(*row)
    return table


def _caption(plane) -> str | None:
    return f"dashboard: {plane.dashboard_url}" if plane.dashboard_url else None


async def _foreground(home: Path, table: bool, dashboard_port: int | None, autoscaler_interval: float, vllm) -> int:
    from kaito.cluster import errors, protocol
    from kaito.cluster.local import storefile
    from kaito.operator import controlplane

    plane = controlplane.ControlPlane(home, dashboard_port=dashboard_port, autoscaler_interval_s=autoscaler_interval,
                                       vllm=vllm)
    try:
        plane.lock()
        storefile.ensure_dir(plane.paths.log.parent)
    except controlplane.AlreadyRunning as exc:
        typer.echo(f"kaito up: a local control plane already runs for {home} (pid {exc})", err=True)
        return 1
    except errors.LocalStateError as exc:
        typer.echo(f"kaito up: {exc}", err=True)
        return 1
    controlplane.configure_logging(plane.paths.log if table else None)
    stop = asyncio.Event()
    controlplane.install_local_stop_signals(stop)
    if not table:
        def ready() -> None:
            typer.echo(f"kaito: local control plane ready (pid {os.getpid()}); state in {plane.paths.home}")
            typer.echo(f"kaito: {vllm.describe()}")
            if plane.dashboard_url:
                typer.echo(f"kaito: dashboard: {plane.dashboard_url}")

        return await _run_plane(plane, stop, ready)
    from rich.console import Console
    from rich.live import Live

    async def refresh(live: Live) -> None:
        while not stop.is_set():
            if plane.cluster is not None:
                try:
                    wss = (await plane.cluster.list(protocol.WORKSPACE)).items
                    pods = (await plane.cluster.list(protocol.POD)).items
                    live.update(build_live_table(wss, pods, _caption(plane)))
                except Exception:  # noqa: BLE001 - the table is cosmetic; never stop the plane for it
                    pass
            await asyncio.sleep(1.0)

    console = Console()

    def announce() -> None:  # only once the store opened and the controller started
        console.print(f"kaito: local control plane for {home} (pid {os.getpid()}); Ctrl-C stops it and its pods; "
                      f"log: {plane.paths.log}")

    with Live(build_live_table([], []), console=console, refresh_per_second=2) as live:
        updater = asyncio.create_task(refresh(live))
        try:
            return await _run_plane(plane, stop, announce)
        finally:
            updater.cancel()


async def _run_plane(plane, stop: asyncio.Event, on_ready) -> int:
    """Run the plane; a start that fails is its one-line reason on stderr and exit 1."""
    from kaito.operator import controlplane

    try:
        await plane.run(stop, on_ready=on_ready)
    except controlplane.StartFailed as exc:
        typer.echo(f"kaito up: {exc.reason}", err=True)
        return 1
    return 0


def _detach(paths, dashboard_port: int | None, autoscaler_interval: float, vllm_python: str | None,
            timeout_s: float = 60.0) -> int:
    from kaito.cluster import errors
    from kaito.operator import controlplane

    try:
        started = controlplane.start_detached(paths, timeout_s, dashboard_port=dashboard_port,
                                              autoscaler_interval_s=autoscaler_interval,
                                              vllm_python=vllm_python)
    except errors.LocalStateError as exc:
        typer.echo(f"kaito up: {exc}", err=True)
        return 1
    if started.pid is not None:
        typer.echo(f"kaito: local control plane up (pid {started.pid}); state in {paths.home}; log: {paths.log}")
        url = controlplane.read_dashboard_url(paths)
        if url:
            typer.echo(f"kaito: dashboard: {url}")
        return 0
    if started.reason:
        typer.echo(f"kaito up: {started.reason}", err=True)
    elif started.exit_code is not None:
        typer.echo(f"kaito up: the control plane exited with code {started.exit_code}; see {paths.log}", err=True)
    else:
        typer.echo(f"kaito up: the control plane did not start within {timeout_s:.0f}s; see {paths.log}", err=True)
    return 1


def run_down(paths, timeout_s: float | None = None) -> int:
    from kaito.operator import controlplane

    timeout_s = controlplane.DOWN_TIMEOUT_S if timeout_s is None else timeout_s
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
        dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard", help="serve the local dashboard"),
        dashboard_port: int = typer.Option(DEFAULT_DASHBOARD_PORT, "--dashboard-port", min=0, max=65535,
                                           help="its port on 127.0.0.1 (0 or taken: any free port)"),
        autoscaler_interval: float = typer.Option(
            DEFAULT_AUTOSCALER_INTERVAL_S, "--autoscaler-interval", min=0.1,
            help="seconds between InferenceSet autoscaler looks (KEDA's pollingInterval)"),
        vllm_python: str = typer.Option(
            None, "--vllm-python", metavar="PATH",
            help="Python interpreter with vLLM installed, for vLLM pods (default: $KAITO_VLLM_PYTHON, else this "
                 "interpreter if it has vLLM; without one, v1beta1 Workspaces that name no runtime run on "
                 "transformers)"),
        home: Path = HomeOption,
    ) -> None:
        """Start the local cluster: store, controller, node provisioner and pod runner on this machine."""
        from kaito.cluster.local import vllm_runtime
        from kaito.operator import controlplane

        paths = local_paths(home)
        port = dashboard_port if dashboard else None
        try:
            vllm = vllm_runtime.find_vllm_runtime(vllm_python, os.environ)
        except vllm_runtime.VllmPythonError as exc:
            typer.echo(f"kaito up: {exc}", err=True)
            raise typer.Exit(2) from None
        if detach:
            pid = controlplane.running_pid(paths)
            if pid:
                typer.echo(f"kaito: a local control plane already runs for {paths.home} (pid {pid})")
                url = controlplane.read_dashboard_url(paths)
                if url:
                    typer.echo(f"kaito: dashboard: {url}")
                raise typer.Exit(0)
            code = _detach(paths, port, autoscaler_interval, vllm.python if vllm_python else None)
            if code == 0:
                typer.echo(f"kaito: {vllm.describe()}")
            raise typer.Exit(code)
        table = not no_table and sys.stdout.isatty()
        raise typer.Exit(asyncio.run(_foreground(paths.home, table, port, autoscaler_interval, vllm)))

    @app.command("dashboard")
    def dashboard_command(
        no_browser: bool = typer.Option(False, "--no-browser", help="only print the URL"),
        home: Path = HomeOption,
    ) -> None:
        """Open the local dashboard of `kaito up` in a browser (or print its URL)."""
        from kaito.operator import controlplane

        paths = local_paths(home)
        url = controlplane.read_dashboard_url(paths)
        if url is None:
            why = ("it was started with --no-dashboard" if controlplane.running_pid(paths) is not None
                   else "no local control plane runs")
            typer.echo(f"kaito dashboard: no dashboard for {paths.home}: {why} (start one with `kaito up --detach`)",
                       err=True)
            raise typer.Exit(1)
        open_in_browser(url, no_browser)

    @app.command("down")
    def down(home: Path = HomeOption) -> None:
        """Stop the local control plane and every process it started."""
        raise typer.Exit(run_down(local_paths(home)))
