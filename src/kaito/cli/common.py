"""What the `kaito` command modules share: options, the target cluster, errors, and table helpers.

The command modules (`workspaces`, `workspace_apply`, `workspace_access`, `local`, ...) import
this module and never each other's names, so the CLI's import graph has no circle and no module
reaches into another's private helpers (import-linter and `tests/unit/test_private_names.py` check
both). Nothing heavy is imported at module level: `kaito --help` stays fast.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

HomeOption = typer.Option(None, "--home", help="state directory (default: $KAITO_HOME or the user data dir)")
KubeconfigOption = typer.Option(None, "--kubeconfig", help="use this cluster instead of the local one")
ContextOption = typer.Option(None, "--context", help="kubeconfig context (implies a real cluster)")
NamespaceOption = typer.Option("default", "-n", "--namespace")
CONDITION_COLUMNS = ("ResourceReady", "InferenceReady", "JobStarted", "WorkspaceSucceeded")
FIELD_MANAGER = "kaito-cli"
YAML_SUFFIXES = (".yaml", ".yml")


class CliError(Exception):
    """A user-facing failure: printed as `kaito: message`, exit 1."""


STDIN_SOURCE = "<stdin>"


def expand_sources(names: list[str]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(source name, text) pairs for files, directories (recursively) and `-`; plus unreadable ones.

    Standard input is read once: a pipe cannot be read twice, so every later step (validation, then
    apply) works on the text returned here, and a second `-` names the same text, not an empty one.
    """
    out: list[tuple[str, str | None]] = []
    bad: list[str] = []
    for name in names:
        if name == "-":
            if all(source != STDIN_SOURCE for source, _ in out):
                out.append((STDIN_SOURCE, sys.stdin.read()))
            continue
        path = Path(name)
        files = (
            sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
            if path.is_dir()
            else [path]
        )
        if path.is_dir() and not files:
            bad.append(f"{name}: no .yaml or .yml files in this directory")
        for file in files:
            try:
                out.append((str(file), file.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                bad.append(f"{file}: cannot read: {getattr(exc, 'strerror', None) or exc}")
    return out, bad


# -- admission as the commands that read files do it (validate, render, apply) ---------------------


def build_facts(cloud: str):
    """The catalog's facts (the one factory every admission caller uses); ValueError: unknown cloud."""
    from kaito.catalog.facts import build_catalog_facts

    return build_catalog_facts(cloud)


def admission_inputs(documents: list, allow_local_urls: bool = False, provision_nodes: bool = True):
    """(AdmissionOptions, ClusterReads) for Workspaces read from files: the URL policy and node
    provisioning asked for, and the ConfigMaps found in the same files as what was "read" (not
    complete: a ConfigMap in no file may exist in the cluster, so it is only warned about)."""
    from kaito.api.admission import AdmissionOptions, ClusterReads
    from kaito.api.validation import UrlPolicy

    configmaps = {}
    for doc in documents:
        data = doc.data
        if (isinstance(data, dict) and data.get("kind") == "ConfigMap" and data.get("apiVersion") == "v1"
                and isinstance(data.get("metadata"), dict)):
            meta = data["metadata"]
            content = data.get("data") if isinstance(data.get("data"), dict) else {}
            configmaps[(meta.get("namespace") or "default", meta.get("name"))] = content
    policy = UrlPolicy.ALLOW_LOCAL if allow_local_urls else UrlPolicy.PUBLIC_ONLY
    return (AdmissionOptions(url_policy=policy, auto_provisioning=provision_nodes),
            ClusterReads(configmaps=configmaps))


def admit_document(doc, facts, options, reads):
    """`kaito.api.admission.admit` of one parsed document (a Workspace of any served version)."""
    from kaito.api.admission import admit

    return admit(doc.data, facts=facts, options=options, reads=reads)


# -- the table of `kaito get` and of `kaito up` ----------------------------------------------------


def condition_status(ws: Mapping[str, Any], type_: str) -> str:
    for cond in (ws.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond.get("status") or ""
    return ""


def compute_age(timestamp: str | None, now: datetime | None = None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def build_row(ws: Mapping[str, Any]) -> list[str]:
    """KAITO's printer columns: NAME, INSTANCE, the four conditions, AGE."""
    meta = ws.get("metadata") or {}
    return [meta.get("name", ""), (ws.get("resource") or {}).get("instanceType") or "",
            *(condition_status(ws, c) for c in CONDITION_COLUMNS), compute_age(meta.get("creationTimestamp"))]


# -- tables: rich on a terminal, kubectl's plain columns in a pipe ----------------------------------


def output_is_terminal() -> bool:
    """Whether standard output is a terminal (kubectl's test: a pipe or a file gets plain columns)."""
    return sys.stdout.isatty()


def format_plain_table(headers: list[str], rows: list[list[str]]) -> str:
    """kubectl's printer: left-aligned columns three spaces apart, full values, no box characters."""
    cells = [[str(h) for h in headers], *([str(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["   ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


def print_table(headers: list[str], rows: list[list[str]], *, title: str | None = None,
                no_wrap: bool = True) -> None:
    """One table on stdout: a rich table on a terminal, plain columns (`format_plain_table`) otherwise."""
    if not output_is_terminal():
        typer.echo(format_plain_table(headers, rows), nl=False)
        return
    from rich.console import Console
    from rich.table import Table, box

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for h in headers:
        table.add_column(h, no_wrap=no_wrap)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def open_in_browser(url: str, no_browser: bool = False) -> None:
    """Print `url` and, where a browser can be started (a desktop session), open it there too."""
    typer.echo(url)
    if no_browser or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform == "darwin"):
        return  # a server or a container: the URL is what the user needs
    import webbrowser

    try:
        webbrowser.open(url)
    except webbrowser.Error:
        pass


# -- the target: the local cluster of $KAITO_HOME or a real one ------------------------------------


def local_paths(home: Path | None):
    """The local control plane's paths for `--home` (default: `$KAITO_HOME`)."""
    from kaito.operator import controlplane

    return controlplane.resolve_paths(home)


def open_target(kubeconfig: Path | None, context: str | None, home: Path | None, *, must_exist: bool = True):
    """(cluster, local paths or None): a real cluster with `--kubeconfig`/`--context`, else the local one."""
    if kubeconfig is not None or context is not None:
        from kaito.cluster.kube import KubeCluster

        return KubeCluster.from_kubeconfig(kubeconfig, context), None
    from kaito.cluster.local import LocalCluster

    paths = local_paths(home)
    if must_exist and not paths.store.exists():
        raise CliError(f"no local cluster in {paths.home}: start one with `kaito up --detach`")
    return LocalCluster(paths.store), paths


def control_plane_down(paths) -> str | None:
    """Why a local endpoint would be dead (no control plane runs, so no model server), or None."""
    from kaito.operator import controlplane

    if paths is None or controlplane.running_pid(paths) is not None:
        return None
    return (f"the local control plane of {paths.home} is not running, so no model server is "
            "(start it with `kaito up --detach`)")


async def get_workspace(cluster, name: str, namespace: str) -> dict:
    from kaito.cluster import errors, protocol

    try:
        return await cluster.get(protocol.WORKSPACE, name, namespace)
    except errors.NotFound:
        raise CliError(f'workspace "{name}" not found in namespace {namespace}') from None


async def list_pods(cluster, name: str, namespace: str) -> list[dict]:
    """The pods of Workspace `name` (selected by KAITO's workspace label)."""
    from kaito.api import labels
    from kaito.cluster import protocol

    return (await cluster.list(protocol.POD, namespace, labels={labels.LABEL_WORKSPACE_NAME: name})).items


def run_async(coro_fn, *args) -> None:
    """Run a command's coroutine; a `CliError` or cluster error is one line on stderr and exit 1."""
    from kaito.cluster import errors

    async def main() -> int:
        return await coro_fn(*args)

    try:
        code = asyncio.run(main())
    except CliError as exc:
        typer.echo(f"kaito: {exc}", err=True)
        code = 1
    except errors.ClusterError as exc:
        typer.echo(f"kaito: {type(exc).__name__}: {exc}", err=True)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)
