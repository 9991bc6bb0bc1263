"""`kaito apply/get/describe/delete/logs/endpoint/chat`: Workspaces on the local cluster or a real one.

Without `--kubeconfig`/`--context` the target is the local cluster of `$KAITO_HOME` (its store file;
the control plane of `kaito up` acts on what is written there). With them, `apply`, `get`,
`describe` and `delete` go to that cluster through `KubeCluster`. `apply` (in `workspace_apply.py`)
validates first with the words of `kaito validate`, and on the local cluster also refuses images
that need a real cluster, before writing anything: bad input never leaves half the objects behind.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from kaito.cli.local import HomeOption, _paths

KubeconfigOption = typer.Option(None, "--kubeconfig", help="use this cluster instead of the local one")
ContextOption = typer.Option(None, "--context", help="kubeconfig context (implies a real cluster)")
NamespaceOption = typer.Option("default", "-n", "--namespace")
CONDITION_COLUMNS = ("ResourceReady", "InferenceReady", "JobStarted", "WorkspaceSucceeded")
RESOURCE_NAMES = ("workspace", "workspaces", "ws", "wk", "workspace.kaito.sh", "workspaces.kaito.sh")
FIELD_MANAGER = "kaito-cli"


class CliError(Exception):
    """A user-facing failure: printed as `kaito <cmd>: message`, exit 1."""


# -- pure helpers shared with `kaito up`'s table --------------------------------------------------


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


def build_endpoint(pods: list[Mapping[str, Any]]) -> str | None:
    """The local URL of the first Ready pod serving port 5000."""
    for pod in pods:
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or [])
        ports = json.loads(((pod.get("metadata") or {}).get("annotations") or {}).get("kaito.sh/local-ports") or "{}")
        if ready and "5000" in ports:
            return f"http://127.0.0.1:{ports['5000']}"
    return None


def _preset_of(ws: Mapping[str, Any]) -> str:
    for section in ("inference", "tuning"):
        name = (((ws.get(section) or {}).get("preset")) or {}).get("name")
        if name:
            return name
    return "template" if (ws.get("inference") or {}).get("template") else ""


# -- targets ------------------------------------------------------------------------------------


def _open(kubeconfig: Path | None, context: str | None, home: Path | None, *, must_exist: bool = True):
    if kubeconfig is not None or context is not None:
        from kaito.cluster.kube import KubeCluster

        return KubeCluster.from_kubeconfig(kubeconfig, context), None
    from kaito.cluster.local import LocalCluster

    paths = _paths(home)
    if must_exist and not paths.store.exists():
        raise CliError(f"no local cluster in {paths.home}: start one with `kaito up --detach`")
    return LocalCluster(paths.store), paths


def _control_plane_down(paths) -> str | None:
    """Why a local endpoint would be dead (no control plane runs, so no model server), or None."""
    from kaito.operator import controlplane

    if paths is None or controlplane.running_pid(paths) is not None:
        return None
    return (f"the local control plane of {paths.home} is not running, so no model server is "
            "(start it with `kaito up --detach`)")


def _run(coro_fn, *args) -> None:
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


async def _workspace(cluster, name: str, namespace: str) -> dict:
    from kaito.cluster import errors, protocol

    try:
        return await cluster.get(protocol.WORKSPACE, name, namespace)
    except errors.NotFound:
        raise CliError(f'workspace "{name}" not found in namespace {namespace}') from None


async def _pods_of(cluster, name: str, namespace: str) -> list[dict]:
    from kaito.cluster import protocol

    return (await cluster.list(protocol.POD, namespace, labels={"kaito.sh/workspace": name})).items


# -- get / describe / delete ----------------------------------------------------------------------


async def _get(name: str | None, output: str, namespace: str, all_ns: bool, kubeconfig, context, home) -> int:
    import yaml
    from rich.console import Console
    from rich.table import Table, box

    from kaito.cluster import protocol

    cluster, paths = _open(kubeconfig, context, home)
    try:
        if name:
            items = [await _workspace(cluster, name, namespace)]
        else:
            items = (await cluster.list(protocol.WORKSPACE, None if all_ns else namespace)).items
        if output in ("yaml", "json"):
            doc: Any = items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}
            typer.echo(yaml.safe_dump(doc, sort_keys=False) if output == "yaml" else json.dumps(doc, indent=2))
            return 0
        if not items:
            typer.echo(f"No workspaces found in {'any namespace' if all_ns else namespace + ' namespace'}.", err=True)
            return 0
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        headers = ["NAME", "INSTANCE", "RESOURCEREADY", "INFERENCEREADY", "JOBSTARTED", "WORKSPACESUCCEEDED", "AGE"]
        if all_ns:
            headers.insert(0, "NAMESPACE")
        down = _control_plane_down(paths) if output == "wide" else None
        if down:
            typer.echo(f"kaito get: {down}", err=True)
        if output == "wide":
            headers += ["PRESET", "NODES", "ENDPOINT"]
        for h in headers:
            table.add_column(h, no_wrap=True)
        for ws in items:
            row = build_row(ws)
            if all_ns:
                row.insert(0, ws["metadata"].get("namespace", ""))
            if output == "wide":
                meta = ws["metadata"]
                endpoint = None if down else build_endpoint(
                    await _pods_of(cluster, meta["name"], meta.get("namespace", "default")))
                row += [_preset_of(ws), ",".join((ws.get("status") or {}).get("workerNodes") or []) or "-",
                        endpoint or "-"]
            table.add_row(*row)
        Console(width=250).print(table)
        return 0
    finally:
        await cluster.close()


async def _describe(name: str, namespace: str, kubeconfig, context, home) -> int:
    from kaito.cluster import protocol

    cluster, paths = _open(kubeconfig, context, home)
    try:
        ws = await _workspace(cluster, name, namespace)
        meta, st = ws["metadata"], ws.get("status") or {}
        lines = [f"Name:         {meta['name']}", f"Namespace:    {meta.get('namespace', 'default')}",
                 f"Created:      {meta.get('creationTimestamp', '')} ({compute_age(meta.get('creationTimestamp'))} ago)",
                 f"Preset:       {_preset_of(ws) or '-'}",
                 f"Instance:     {(ws.get('resource') or {}).get('instanceType') or '-'}",
                 f"Worker nodes: {', '.join(st.get('workerNodes') or []) or '-'}", "Conditions:"]
        for c in st.get("conditions") or []:
            lines.append(f"  {c.get('type', ''):<20} {c.get('status', ''):<6} {c.get('reason', ''):<32} {c.get('message', '')}")
        if not st.get("conditions"):
            lines.append("  (none yet: is the control plane running?)")
        pods = await _pods_of(cluster, name, meta.get("namespace", "default"))
        lines.append("Pods:")
        for p in pods:
            ps = p.get("status") or {}
            restarts = sum(c.get("restartCount", 0) for c in ps.get("containerStatuses") or [])
            lines.append(f"  {p['metadata']['name']:<40} {ps.get('phase', '?'):<10} restarts={restarts} "
                         f"{ps.get('reason', '')} {ps.get('message', '')}".rstrip())
        if not pods:
            lines.append("  -")
        down = _control_plane_down(paths)
        endpoint = f"- ({down})" if down else build_endpoint(pods)
        if paths is None:
            endpoint = f"http://{meta['name']}.{meta.get('namespace', 'default')}.svc.cluster.local:80 (in the cluster)"
        lines.append(f"Endpoint:     {endpoint or '- (not ready)'}")
        names = {meta["name"]} | {p["metadata"]["name"] for p in pods}
        events = [e for e in (await cluster.list(protocol.EVENT, meta.get("namespace", "default"))).items
                  if (e.get("involvedObject") or {}).get("name") in names]
        events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp") or "")
        lines.append("Events:")
        for e in events[-30:]:
            obj = e.get("involvedObject") or {}
            count = f" (x{e['count']})" if (e.get("count") or 1) > 1 else ""
            lines.append(f"  {e.get('type', ''):<8} {e.get('reason', ''):<24} {obj.get('kind', '')}/{obj.get('name', '')}: "
                         f"{e.get('message', '')}{count}")
        if not events:
            lines.append("  -")
        typer.echo("\n".join(lines))
        return 0
    finally:
        await cluster.close()


async def _delete(name: str, namespace: str, wait: bool, timeout: float, kubeconfig, context, home) -> int:
    from kaito.cluster import errors, protocol

    cluster, paths = _open(kubeconfig, context, home)
    try:
        try:
            await cluster.delete(protocol.WORKSPACE, name, namespace)
        except errors.NotFound:
            raise CliError(f'workspace "{name}" not found in namespace {namespace}') from None
        typer.echo(f'workspace.kaito.sh "{name}" deleted')
        deadline = time.monotonic() + timeout
        while wait and time.monotonic() < deadline:
            try:
                await cluster.get(protocol.WORKSPACE, name, namespace)
            except errors.NotFound:
                if paths is None or not await _pods_of(cluster, name, namespace):
                    return 0
            await asyncio.sleep(0.3)
        if wait:
            typer.echo(f"kaito delete: {name} is still being deleted after {timeout:.0f}s", err=True)
            return 1
        return 0
    finally:
        await cluster.close()


def _check_resource(resource: str) -> None:
    if resource.lower() not in RESOURCE_NAMES:
        typer.echo(f"kaito: unknown resource type {resource!r}: only workspaces are served here", err=True)
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    from kaito.cli import workspace_access, workspace_apply

    @app.command("apply")
    def apply(
        filename: list[str] = typer.Option(..., "-f", "--filename", help="YAML file, directory or - (repeatable)"),
        wait: bool = typer.Option(False, "--wait", help="wait until every Workspace succeeds"),
        timeout: float = typer.Option(600, "--timeout", help="seconds --wait waits"),
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """Validate, then create or update the Workspaces (and ConfigMaps/Secrets) of FILE."""
        _run(workspace_apply.run_apply, filename, kubeconfig, context, home, wait, timeout)

    @app.command("get")
    def get(
        resource: str = typer.Argument(..., help="workspaces"),
        name: str = typer.Argument(None),
        output: str = typer.Option("", "-o", "--output", help="yaml, json or wide"),
        namespace: str = NamespaceOption,
        all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """List Workspaces with KAITO's columns (or one, as YAML/JSON)."""
        _check_resource(resource)
        if output not in ("", "yaml", "json", "wide"):
            typer.echo(f"kaito get: unknown output format {output!r} (yaml, json or wide)", err=True)
            raise typer.Exit(2)
        _run(_get, name, output, namespace, all_namespaces, kubeconfig, context, home)

    @app.command("describe")
    def describe(
        resource: str = typer.Argument(..., help="workspace"), name: str = typer.Argument(...),
        namespace: str = NamespaceOption,
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """Conditions, pods, endpoint and events of a Workspace."""
        _check_resource(resource)
        _run(_describe, name, namespace, kubeconfig, context, home)

    @app.command("delete")
    def delete(
        resource: str = typer.Argument(..., help="workspace"), name: str = typer.Argument(...),
        namespace: str = NamespaceOption,
        wait: bool = typer.Option(True, "--wait/--no-wait", help="wait until it and its pods are gone"),
        timeout: float = typer.Option(120, "--timeout"),
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """Delete a Workspace (its nodes, pods and processes go with it)."""
        _check_resource(resource)
        _run(_delete, name, namespace, wait, timeout, kubeconfig, context, home)

    @app.command("logs")
    def logs(name: str = typer.Argument(...), follow: bool = typer.Option(False, "-f", "--follow"),
             namespace: str = NamespaceOption, home: Path = HomeOption) -> None:
        """Logs of a Workspace's pods on the local cluster."""
        _run(workspace_access.run_logs, name, namespace, follow, home)

    @app.command("endpoint")
    def endpoint(name: str = typer.Argument(...), namespace: str = NamespaceOption, home: Path = HomeOption) -> None:
        """The local URL of a Workspace's model server (OpenAI API under /v1)."""
        _run(workspace_access.run_endpoint, name, namespace, home)

    @app.command("chat")
    def chat(name: str = typer.Argument(...), prompt: str = typer.Argument(None, help="omit for a conversation"),
             namespace: str = NamespaceOption, max_tokens: int = typer.Option(128, "--max-tokens"),
             home: Path = HomeOption) -> None:
        """Send a chat message to a Workspace's model (or chat interactively)."""
        _run(workspace_access.run_chat, name, prompt, namespace, max_tokens, home)
