"""`kaito get/describe/delete`: Workspaces and RAGEngines on the local cluster or a real one.

Without `--kubeconfig`/`--context` the target is the local cluster of `$KAITO_HOME` (its store file;
the control plane of `kaito up` acts on what is written there). With them, they go to that cluster
through `KubeCluster`. Writing them is `workspace_apply.py`; reaching their pods (logs, endpoint,
chat) is `workspace_access.py`; what they share (the kinds served here, `CLI_KINDS`) is `common.py`.
Kinds with commands of their own register them in `common.KIND_COMMANDS` (InferenceSets:
`inferencesets.py`), and these commands hand such a resource to them.

Objects are read in the storage version and shown (`-o yaml|json`) in the version each Workspace
was written in (annotation `workspace.kaito.sh/api-version`; RAGEngines in the storage version), or
in the one `--api-version` names, converted through `kaito.api.kinds`.
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
    WORKSPACE_KIND,
    CliError,
    CliKind,
    ContextOption,
    HomeOption,
    KubeconfigOption,
    NamespaceOption,
    build_kind_row,
    compute_age,
    control_plane_down,
    describe_engine,
    find_kind_commands,
    get_object,
    instance_type_of,
    list_kind_pods,
    open_target,
    plane_problem,
    print_table,
    read_local_vllm,
    resolve_kind,
    run_async,
)

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


def show_in_version(obj: Mapping[str, Any], api_version: str | None) -> dict:
    """A stored object in `api_version`, else a Workspace in the version it was written in (any
    other kind as stored)."""
    from kaito.api import conversion, kinds

    is_workspace = obj.get("kind") == "Workspace"
    wanted = api_version or (conversion.recorded_version(obj) if is_workspace else obj.get("apiVersion"))
    try:
        return kinds.convert_object(obj, wanted)
    except conversion.ParseError as exc:
        kind = str(obj.get("kind") or "object").lower()
        raise CliError(f"{kind} {(obj.get('metadata') or {}).get('name')}: cannot show it as {wanted}: {exc}") from None


def _preset_of(ws: Mapping[str, Any]) -> str:
    for section in ("inference", "tuning"):
        name = (((ws.get(section) or {}).get("preset")) or {}).get("name")
        if name:
            return name
    return "template" if (ws.get("inference") or {}).get("template") else ""


# -- get / describe / delete ----------------------------------------------------------------------


def _inference_url(rag: Mapping[str, Any]) -> str:
    return ((rag.get("spec") or {}).get("inferenceService") or {}).get("url") or "- (retrieve only)"


async def _get(kind: CliKind, name: str | None, output: str, namespace: str, all_ns: bool, kubeconfig, context,
               home, api_version: str | None = None) -> int:
    import yaml

    from kaito.cluster import protocol
    from kaito.cluster.local import runner

    cluster, paths = open_target(kubeconfig, context, home)
    try:
        stale = plane_problem(paths)
        if stale:  # the conditions are the last ones written: nobody keeps them true now
            typer.echo(f"kaito get: {stale}: the status shown is stale", err=True)
        if name:
            items = [await get_object(cluster, kind, name, namespace)]
        else:
            items = (await cluster.list(getattr(protocol, kind.resource), None if all_ns else namespace)).items
        if output in ("yaml", "json"):
            shown = [show_in_version(item, api_version) for item in items]
            doc: Any = shown[0] if name else {"apiVersion": "v1", "kind": "List", "items": shown}
            typer.echo(yaml.safe_dump(doc, sort_keys=False) if output == "yaml" else json.dumps(doc, indent=2))
            return 0
        if output == "name":
            for obj in items:
                typer.echo(f"{kind.name}.kaito.sh/{obj['metadata']['name']}")
            return 0
        if not items:
            typer.echo(f"No {kind.name}s found in {'any namespace' if all_ns else namespace + ' namespace'}.", err=True)
            return 0
        headers = ["NAME", "INSTANCE", *(c.upper() for c in kind.columns), "AGE"]
        if all_ns:
            headers.insert(0, "NAMESPACE")
        down = control_plane_down(paths) if output == "wide" else None
        vllm = None
        if output == "wide":
            headers += ["PRESET", "ENGINE"] if kind is WORKSPACE_KIND else ["INFERENCE"]
            headers += ["NODES", "ENDPOINT"]
            vllm = await read_local_vllm(cluster)
        if stale:
            headers.append("STALE")
        rows = []
        for obj in items:
            row = build_kind_row(kind, obj)
            if all_ns:
                row.insert(0, obj["metadata"].get("namespace", ""))
            if output == "wide":
                meta = obj["metadata"]
                pods = await list_kind_pods(cluster, kind, meta["name"], meta.get("namespace", "default"))
                endpoint = None if down else runner.find_local_endpoint(pods)
                if kind is WORKSPACE_KIND:
                    engine, fallback = describe_engine(obj, pods, vllm)
                    row += [_preset_of(obj), f"{engine} (no vLLM here)" if fallback else engine]
                else:
                    row.append(_inference_url(obj))
                row += [",".join((obj.get("status") or {}).get("workerNodes") or []) or "-", endpoint or "-"]
            if stale:
                row.append("yes")
            rows.append(row)
        print_table(headers, rows)
        return 0
    finally:
        await cluster.close()


def _workspace_header(ws: Mapping[str, Any]) -> list[str]:
    from kaito.api import conversion

    st = ws.get("status") or {}
    return [f"API version:  {conversion.recorded_version(ws)} (as written; stored as {ws.get('apiVersion')})",
            f"Preset:       {_preset_of(ws) or '-'}",
            f"Instance:     {instance_type_of(ws) or '-'}",
            f"Worker nodes: {', '.join(st.get('workerNodes') or []) or '-'}",
            f"State:        {st.get('state') or '-'} (target nodes: {st.get('targetNodeCount') or '-'})"]


def _ragengine_header(rag: Mapping[str, Any]) -> list[str]:
    spec, st = rag.get("spec") or {}, rag.get("status") or {}
    embedding = spec.get("embedding") or {}
    local, remote = embedding.get("local") or {}, embedding.get("remote") or {}
    embedder = (f"remote {remote.get('url')}" if remote else
                f"local {local.get('modelID') or 'BAAI/bge-small-en-v1.5'}" if local else "-")
    storage = spec.get("storage") or {}
    db = storage.get("vectorDB") or {}
    volume = (storage.get("persistentVolume") or {}).get("persistentVolumeClaim")
    window = (spec.get("inferenceService") or {}).get("contextWindowSize")
    return [f"Instance:     {instance_type_of(rag) or '- (no node of its own)'}",
            f"Embedding:    {embedder}",
            f"Vector DB:    {db.get('engine') or 'faiss'}{' at ' + db['url'] if db.get('url') else ''}"
            f"{f' (indexes on claim {volume})' if volume else ''}",
            f"Inference:    {_inference_url(rag)}{f' (context window {window})' if window else ''}",
            f"Worker nodes: {', '.join(st.get('workerNodes') or []) or '-'}"]


async def _describe(kind: CliKind, name: str, namespace: str, kubeconfig, context, home) -> int:
    from kaito.cluster import protocol
    from kaito.cluster.local import runner

    cluster, paths = open_target(kubeconfig, context, home)
    try:
        obj = await get_object(cluster, kind, name, namespace)
        stale = plane_problem(paths)
        meta, st = obj["metadata"], obj.get("status") or {}
        lines = [f"Name:         {meta['name']}", f"Namespace:    {meta.get('namespace', 'default')}",
                 f"Kind:         {obj.get('kind')}",
                 f"Created:      {meta.get('creationTimestamp', '')} ({compute_age(meta.get('creationTimestamp'))} ago)"]
        lines += _workspace_header(obj) if kind is WORKSPACE_KIND else _ragengine_header(obj)
        if stale:
            lines.append(f"Stale:        yes: {stale}")
        lines.append("Conditions:")
        for c in st.get("conditions") or []:
            lines.append(f"  {c.get('type', ''):<22} {c.get('status', ''):<7} {c.get('reason', ''):<32} "
                         f"{c.get('message', '')}")
        if not st.get("conditions"):
            lines.append("  (none yet: is the control plane running?)")
        pods = await list_kind_pods(cluster, kind, name, meta.get("namespace", "default"))
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
        if kind is WORKSPACE_KIND:  # after its Preset line
            engine, fallback = describe_engine(obj, pods, await read_local_vllm(cluster))
            lines.insert(6, f"Engine:       {engine}" + (f" ({fallback})" if fallback else ""))
        names = {meta["name"]} | {p["metadata"]["name"] for p in pods}
        events = [e for e in (await cluster.list(protocol.EVENT, meta.get("namespace", "default"))).items
                  if (e.get("involvedObject") or {}).get("name") in names]
        events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp") or "")
        lines.append("Events:")
        for e in events[-30:]:
            involved = e.get("involvedObject") or {}
            count = f" (x{e['count']})" if (e.get("count") or 1) > 1 else ""
            lines.append(f"  {e.get('type', ''):<8} {e.get('reason', ''):<24} "
                         f"{involved.get('kind', '')}/{involved.get('name', '')}: {e.get('message', '')}{count}")
        if not events:
            lines.append("  -")
        typer.echo("\n".join(lines))
        return 0
    finally:
        await cluster.close()


async def _delete(kind: CliKind, name: str, namespace: str, wait: bool, timeout: float, kubeconfig, context,
                  home) -> int:
    from kaito.cluster import errors, protocol

    resource = getattr(protocol, kind.resource)
    cluster, paths = open_target(kubeconfig, context, home)
    try:
        problem = plane_problem(paths)
        if problem:  # nothing would remove its finalizer, nodes and processes: refuse, do not hang
            raise CliError(f"{problem}; it deletes {kind.name}s, so nothing was deleted")
        try:
            await cluster.delete(resource, name, namespace)
        except errors.NotFound:
            raise CliError(f'{kind.name} "{name}" not found in namespace {namespace}') from None
        typer.echo(f'{kind.name}.kaito.sh "{name}" deleted')
        deadline = time.monotonic() + timeout
        while wait and time.monotonic() < deadline:
            try:
                await cluster.get(resource, name, namespace)
            except errors.NotFound:
                if paths is None or not await list_kind_pods(cluster, kind, name, namespace):
                    return 0
            problem = plane_problem(paths)
            if problem:
                typer.echo(f"kaito delete: {problem}; {name} is marked for deletion and goes once the control "
                           "plane runs again", err=True)
                return 1
            await asyncio.sleep(0.3)
        if wait:
            typer.echo(f"kaito delete: {name} is still being deleted after {timeout:.0f}s", err=True)
            return 1
        return 0
    finally:
        await cluster.close()


def register(app: typer.Typer) -> None:
    @app.command("get")
    def get(
        resource: str = typer.Argument(..., help="workspaces, inferencesets or ragengines"),
        name: str = typer.Argument(None),
        output: str = typer.Option("", "-o", "--output", help="yaml, json, wide or name"),
        namespace: str = NamespaceOption,
        all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
        api_version: str = typer.Option(None, "--api-version",
                                        help="show -o yaml/json as v1alpha1 or v1beta1 (default: as written)"),
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """List Workspaces, InferenceSets or RAGEngines with KAITO's columns, or one as YAML/JSON."""
        other = find_kind_commands(resource)
        kind = resolve_kind(resource) if other is None else None
        if output not in ("", "yaml", "json", "wide", "name"):
            typer.echo(f"kaito get: unknown output format {output!r} (yaml, json, wide or name)", err=True)
            raise typer.Exit(2)
        version = resolve_api_version(api_version)
        if other is not None:
            run_async(other.get, name, output, namespace, all_namespaces, kubeconfig, context, home, version)
        else:
            run_async(_get, kind, name, output, namespace, all_namespaces, kubeconfig, context, home, version)

    @app.command("describe")
    def describe(
        resource: str = typer.Argument(..., help="workspace, inferenceset or ragengine"),
        name: str = typer.Argument(...),
        namespace: str = NamespaceOption,
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """Conditions, pods (or replicas), endpoint and events of a Workspace, InferenceSet or RAGEngine."""
        other = find_kind_commands(resource)
        if other is not None:
            run_async(other.describe, name, namespace, kubeconfig, context, home)
        else:
            run_async(_describe, resolve_kind(resource), name, namespace, kubeconfig, context, home)

    @app.command("delete")
    def delete(
        resource: str = typer.Argument(..., help="workspace, inferenceset or ragengine"),
        name: str = typer.Argument(...),
        namespace: str = NamespaceOption,
        wait: bool = typer.Option(True, "--wait/--no-wait", help="wait until it and its pods are gone"),
        timeout: float = typer.Option(120, "--timeout"),
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """Delete a Workspace, RAGEngine or InferenceSet: its nodes, pods, processes and replicas go with it."""
        other = find_kind_commands(resource)
        if other is not None:
            run_async(other.delete, name, namespace, wait, timeout, kubeconfig, context, home)
        else:
            run_async(_delete, resolve_kind(resource), name, namespace, wait, timeout, kubeconfig, context, home)
