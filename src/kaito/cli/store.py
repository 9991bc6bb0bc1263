"""`kaito store`: check, snapshot, back up, reset and restore the local cluster's store.

The work is `kaito.cluster.local.snapshots` and `storefile`'s; this module parses arguments, refuses
to replace a store while a control plane uses it, and prints one line per outcome. A damaged
store's error names these commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

from kaito.cli.common import CliError, HomeOption, check_home, local_paths, run_async

store_app = typer.Typer(help="Check, snapshot, back up, reset or restore the local cluster's store.",
                        no_args_is_help=True)


def _existing_store(home: Path | None) -> Path:
    paths = check_home(local_paths(home))
    if not paths.store.exists() and not paths.store.is_symlink():
        raise CliError(f"no local cluster in {paths.home}: start one with `kaito up --detach`")
    return paths.store


def _paths_when_stopped(home: Path | None, action: str):
    from kaito.operator import controlplane

    paths = check_home(local_paths(home))
    pid = controlplane.running_pid(paths)
    if pid is not None:
        raise CliError(f"the local control plane of {paths.home} runs (pid {pid}); stop it with `kaito down` "
                       f"before you {action} its store")
    return paths


@store_app.command("check")
def check(home: Path | None = HomeOption) -> None:
    """Check the store's integrity (SQLite's full integrity check)."""
    async def main() -> int:
        from kaito.cluster.local import storefile

        store = _existing_store(home)
        storefile.connect(store, check="full").close()
        typer.echo(f"{store}: sound")
        return 0

    run_async(main)


@store_app.command("snapshots")
def list_snapshots(home: Path | None = HomeOption) -> None:
    """List the store's snapshots, newest first."""
    async def main() -> int:
        from kaito.cli.common import print_table
        from kaito.cluster.local import snapshots

        found = snapshots.list_snapshots(check_home(local_paths(home)).store)
        rows = [[s.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC"), str(s.resource_version), str(s.path)] for s in found]
        print_table(["TAKEN", "RESOURCEVERSION", "PATH"], rows)
        return 0

    run_async(main)


@store_app.command("snapshot")
def snapshot(home: Path | None = HomeOption) -> None:
    """Take a snapshot now (skipped when nothing changed since the newest)."""
    async def main() -> int:
        from kaito.cluster.local import snapshots

        taken = snapshots.take_snapshot(_existing_store(home))
        typer.echo(f"snapshot {taken.path}" if taken else "nothing changed since the newest snapshot")
        return 0

    run_async(main)


@store_app.command("backup")
def backup(dest: Path = typer.Argument(..., help="file to write the copy to (must not exist)"),
           home: Path | None = HomeOption) -> None:
    """Copy the store to DEST: a consistent copy, or a damaged store's bytes as they are."""
    async def main() -> int:
        from kaito.cluster.local import snapshots

        typer.echo(f"backed up to {snapshots.backup_store(_existing_store(home), dest)}")
        return 0

    run_async(main)


@store_app.command("reset")
def reset(home: Path | None = HomeOption,
          yes: bool = typer.Option(False, "--yes", help="confirm: the cluster starts empty")) -> None:
    """Set the store aside (renamed, kept) and start an empty one."""
    async def main() -> int:
        from kaito.cluster.local import snapshots

        paths = _paths_when_stopped(home, "reset")
        if not yes:
            raise CliError("this starts the local cluster empty (the old store is kept, renamed); "
                           "run again with --yes, or restore a snapshot with `kaito store restore`")
        aside = snapshots.reset_store(paths.store)
        typer.echo(f"new empty store {paths.store}" + (f"; the old one is {aside}" if aside else ""))
        return 0

    run_async(main)


@store_app.command("restore")
def restore(snapshot: Path | None = typer.Argument(None, help="snapshot file (default: the newest sound one)"),
            home: Path | None = HomeOption) -> None:
    """Replace the store by a snapshot; the replaced store is set aside (renamed, kept)."""
    async def main() -> int:
        from kaito.cluster.local import snapshots

        paths = _paths_when_stopped(home, "restore")
        restored, aside = snapshots.restore_snapshot(paths.store, snapshot)
        what = restored.path if isinstance(restored, snapshots.Snapshot) else restored
        typer.echo(f"restored {paths.store} from {what}" + (f"; the replaced store is {aside}" if aside else ""))
        return 0

    run_async(main)


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
