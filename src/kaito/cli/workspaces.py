"""`kaito get/describe/delete`: Workspaces on the local cluster or a real one.

Without `--kubeconfig`/`--context` the target is the local cluster of `$KAITO_HOME` (its store file;
the control plane of `kaito up` acts on what is written there). With them, they go to that cluster
through `KubeCluster`. Writing Workspaces is `workspace_apply.py`; reaching their pods (logs,
endpoint, chat) is `workspace_access.py`; what they share is `common.py`.

Workspaces are read in the storage version and shown (`-o yaml|json`) in the version each was
written in (annotation `workspace.kaito.sh/api-version`), or in the one `--api-version` names,
converted through `kaito.api.conversion`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from kaito.cli.common import (
    CliError,
    ContextOption,
    HomeOption,
    KubeconfigOption,
    NamespaceOption,
    build_row,
    compute_age,
    control_plane_down,
    get_workspace,
    list_pods,
    open_target,
    print_table,
    run_async,
)

RESOURCE_NAMES = ("workspace", "workspaces", "ws", "wk", "workspace.kaito.sh", "workspaces.kaito.sh")
API_VERSIONS = ("kaito.sh/v1alpha1", "kaito.sh/v1beta1")


def resolve_api_version(value: str | None) -> str | None:
    """`v1alpha1` or `kaito.sh/v1alpha1` (and v1beta1) → the full apiVersion; None: as written."""
    if not value:
        return None
    full = value if "/" in value else f"kaito.sh/{value}"
    if full not in API_VERSIONS:
        typer.echo(f"kaito: unknown --api-version {value!r} (v1alpha1 or v1beta1)", err=True)
        raise typer.Exit(2)
    return full


def show_in_version(ws: Mapping[str, Any], api_version: str | None) -> dict:
    """A stored Workspace in `api_version`, else in the version it was written in."""
    from kaito.api import conversion

    wanted = api_version or conversion.recorded_version(ws)
    try:
        return conversion.convert_object(ws, wanted)
    except conversion.ParseError as exc:
        raise CliError(f"workspace {(ws.get('metadata') or {}).get('name')}: cannot show it as {wanted}: {exc}") from None


def _preset_of(ws: Mapping[str, Any]) -> str:
    for section in ("inference", "tuning"):
        name = (((ws.get(section) or {}).get("preset")) or {}).get("name")
        if name:
            return name
    return "template" if (ws.get("inference") or {}).get("template") else ""


# -- get / describe / delete ----------------------------------------------------------------------


async def _get(name: str | None, output: str, namespace: str, all_ns: bool, kubeconfig, context, home,
               api_version: str | None = None) -> int:
    import yaml

    from kaito.cluster import protocol
    from kaito.cluster.local import runner

    cluster, paths = open_target(kubeconfig, context, home)
    try:
        if name:
            items = [await get_workspace(cluster, name, namespace)]
        else:
            items = (await cluster.list(protocol.WORKSPACE, None if all_ns else namespace)).items
        if output in ("yaml", "json"):
            shown = [show_in_version(item, api_version) for item in items]
            doc: Any = shown[0] if name else {"apiVersion": "v1", "kind": "List", "items": shown}
            typer.echo(yaml.safe_dump(doc, sort_keys=False) if output == "yaml" else json.dumps(doc, indent=2))
            return 0
        if output == "name":
            for ws in items:
                typer.echo(f"workspace.kaito.sh/{ws['metadata']['name']}")
            return 0
        if not items:
            typer.echo(f"No workspaces found in {'any namespace' if all_ns else namespace + ' namespace'}.", err=True)
            return 0
        headers = ["NAME", "INSTANCE", "RESOURCEREADY", "INFERENCEREADY", "JOBSTARTED", "WORKSPACESUCCEEDED", "AGE"]
        if all_ns:
            headers.insert(0, "NAMESPACE")
        down = control_plane_down(paths) if output == "wide" else None
        if down:
            typer.echo(f"kaito get: {down}", err=True)
        if output == "wide":
            headers += ["PRESET", "NODES", "ENDPOINT"]
        rows = []
        for ws in items:
            row = build_row(ws)
            if all_ns:
                row.insert(0, ws["metadata"].get("namespace", ""))
            if output == "wide":
                meta = ws["metadata"]
                endpoint = None if down else runner.find_local_endpoint(
                    await list_pods(cluster, meta["name"], meta.get("namespace", "default")))
                row += [_preset_of(ws), ",".join((ws.get("status") or {}).get("workerNodes") or []) or "-",
                        endpoint or "-"]
            rows.append(row)
        print_table(headers, rows)
        return 0
    finally:
        await cluster.close()


async def _describe(name: str, namespace: str, kubeconfig, context, home) -> int:
    from kaito.cluster import protocol
    from kaito.cluster.local import runner

    cluster, paths = open_target(kubeconfig, context, home)
    try:
        from kaito.api import conversion

        ws = await get_workspace(cluster, name, namespace)
        meta, st = ws["metadata"], ws.get("status") or {}
        lines = [f"Name:         {meta['name']}", f"Namespace:    {meta.get('namespace', 'default')}",
                 f"API version:  {conversion.recorded_version(ws)} (as written; stored as {ws.get('apiVersion')})",
                 f"Created:      {meta.get('creationTimestamp', '')} ({compute_age(meta.get('creationTimestamp'))} ago)",
                 f"Preset:       {_preset_of(ws) or '-'}",
                 f"Instance:     {(ws.get('resource') or {}).get('instanceType') or '-'}",
                 f"Worker nodes: {', '.join(st.get('workerNodes') or []) or '-'}",
                 f"State:        {st.get('state') or '-'} (target nodes: {st.get('targetNodeCount') or '-'})",
                 "Conditions:"]
        for c in st.get("conditions") or []:
            lines.append(f"  {c.get('type', ''):<20} {c.get('status', ''):<6} {c.get('reason', ''):<32} {c.get('message', '')}")
        if not st.get("conditions"):
            lines.append("  (none yet: is the control plane running?)")
        pods = await list_pods(cluster, name, meta.get("namespace", "default"))
        lines.append("Pods:")
        for p in pods:
            ps = p.get("status") or {}
            restarts = sum(c.get("restartCount", 0) for c in ps.get("containerStatuses") or [])
            lines.append(f"  {p['metadata']['name']:<40} {ps.get('phase', '?'):<10} restarts={restarts} "
                         f"{ps.get('reason', '')} {ps.get('message', '')}".rstrip())
        if not pods:
            lines.append("  -")
        down = control_plane_down(paths)
        endpoint = f"- ({down})" if down else runner.find_local_endpoint(pods)
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

    cluster, paths = open_target(kubeconfig, context, home)
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
                if paths is None or not await list_pods(cluster, name, namespace):
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
    @app.command("get")
    def get(
        resource: str = typer.Argument(..., help="workspaces"),
        name: str = typer.Argument(None),
        output: str = typer.Option("", "-o", "--output", help="yaml, json, wide or name"),
        namespace: str = NamespaceOption,
        all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
        api_version: str = typer.Option(None, "--api-version",
                                        help="show -o yaml/json as v1alpha1 or v1beta1 (default: as written)"),
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """List Workspaces with KAITO's columns (or one, as YAML/JSON in the version it was written in)."""
        _check_resource(resource)
        if output not in ("", "yaml", "json", "wide", "name"):
            typer.echo(f"kaito get: unknown output format {output!r} (yaml, json, wide or name)", err=True)
            raise typer.Exit(2)
        version = resolve_api_version(api_version)
        run_async(_get, name, output, namespace, all_namespaces, kubeconfig, context, home, version)

    @app.command("describe")
    def describe(
        resource: str = typer.Argument(..., help="workspace"), name: str = typer.Argument(...),
        namespace: str = NamespaceOption,
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """Conditions, pods, endpoint and events of a Workspace."""
        _check_resource(resource)
        run_async(_describe, name, namespace, kubeconfig, context, home)

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
        run_async(_delete, name, namespace, wait, timeout, kubeconfig, context, home)
