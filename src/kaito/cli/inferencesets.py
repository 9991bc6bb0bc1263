"""`kaito get/describe/delete inferencesets` and `kaito scale inferenceset NAME --replicas N`.

`get`, `describe` and `delete` are Workspaces' commands (`workspaces.py`); this module registers the
InferenceSet kind with them (`common.KIND_COMMANDS`). Tables follow kubectl's habits and KAITO's
printer columns (NAME, REPLICAS, READYREPLICAS, AGE; `-o wide` adds the ready condition, the preset
and, on the local cluster, the set's gateway URL); `-o yaml|json` shows the stored v1beta1 object, or
the version `--api-version` names. `scale` writes `spec.replicas` through the scale subresource, as
`kubectl scale` does, locally or on a cluster. Reaching a set's gateway (`kaito endpoint`,
`kaito chat`) goes through `workspace_access.py`, which asks `common.find_set_endpoint`.
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
    FIELD_MANAGER,
    KIND_COMMANDS,
    CliError,
    ContextOption,
    HomeOption,
    KindCommands,
    KubeconfigOption,
    NamespaceOption,
    compute_age,
    control_plane_down,
    get_inferenceset,
    open_target,
    print_table,
    run_async,
    set_gateway_url,
)

RESOURCE_NAMES = ("inferenceset", "inferencesets", "is", "isets", "inferenceset.kaito.sh", "inferencesets.kaito.sh")
HEADERS = ["NAME", "REPLICAS", "READYREPLICAS", "AGE"]
WIDE_HEADERS = ["READY", "PRESET", "ENDPOINT"]


def _condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), {})


def _preset(obj: Mapping[str, Any]) -> str:
    inference = ((obj.get("spec") or {}).get("template") or {}).get("inference") or {}
    return ((inference.get("preset") or {}).get("name")) or ("template" if inference.get("template") else "")


def build_set_row(obj: Mapping[str, Any]) -> list[str]:
    """KAITO's printer columns: NAME, REPLICAS, READYREPLICAS, AGE."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    return [meta.get("name", ""), str(spec.get("replicas", "")), str(status.get("readyReplicas", 0)),
            compute_age(meta.get("creationTimestamp"))]


def _show(obj: Mapping[str, Any], api_version: str | None) -> dict:
    from kaito.api import kinds

    if not api_version or api_version == obj.get("apiVersion"):
        return dict(obj)
    try:
        return kinds.convert_object(obj, api_version)
    except kinds.ParseError as exc:
        raise CliError(f"inferenceset {(obj.get('metadata') or {}).get('name')}: cannot show it as {api_version}: "
                       f"{exc}") from None


async def run_get(name: str | None, output: str, namespace: str, all_ns: bool, kubeconfig, context, home,
                  api_version: str | None = None) -> int:
    import yaml

    from kaito.cluster import protocol

    cluster, paths = open_target(kubeconfig, context, home)
    try:
        if name:
            items = [await get_inferenceset(cluster, name, namespace)]
        else:
            items = (await cluster.list(protocol.INFERENCESET, None if all_ns else namespace)).items
    finally:
        await cluster.close()
    if output in ("yaml", "json"):
        shown = [_show(item, api_version) for item in items]
        doc: Any = shown[0] if name else {"apiVersion": "v1", "kind": "List", "items": shown}
        typer.echo(yaml.safe_dump(doc, sort_keys=False) if output == "yaml" else json.dumps(doc, indent=2))
        return 0
    if output == "name":
        for obj in items:
            typer.echo(f"inferenceset.kaito.sh/{obj['metadata']['name']}")
        return 0
    if not items:
        typer.echo(f"No inferencesets found in {'any namespace' if all_ns else namespace + ' namespace'}.", err=True)
        return 0
    headers = (["NAMESPACE"] if all_ns else []) + HEADERS + (WIDE_HEADERS if output == "wide" else [])
    down = control_plane_down(paths) if output == "wide" else None
    if down:
        typer.echo(f"kaito get: {down}", err=True)
    rows = []
    for obj in items:
        meta = obj["metadata"]
        row = ([meta.get("namespace", "")] if all_ns else []) + build_set_row(obj)
        if output == "wide":
            url = None if down else set_gateway_url(paths, meta["name"], meta.get("namespace", "default"))
            row += [_condition(obj, "InferenceSetReady").get("status") or "", _preset(obj) or "-", url or "-"]
        rows.append(row)
    print_table(headers, rows)
    return 0


def _autoscaling_line(obj: Mapping[str, Any], local: bool) -> str:
    from kaito.api import autoscaling

    notes = (obj.get("metadata") or {}).get("annotations") or {}
    policy, problems = autoscaling.parse_autoscaling(notes, node_count_limit=(obj.get("spec") or {}).get("nodeCountLimit"))
    if policy is None:
        errors = [str(p) for p in problems if p.severity == "error"]
        return f"invalid, not scaled: {'; '.join(errors)}" if errors else "off (spec.replicas as written)"
    low = notes.get(autoscaling.MIN_REPLICAS, str(policy.min_replicas)).strip()
    high = policy.max_replicas if policy.max_replicas is not None else "nodeCountLimit ÷ nodes per replica"
    metrics = ", ".join(f"{m.name} {m.down_threshold:g}..{m.up_threshold:g}" for m in policy.metrics)
    who = "the local autoscaler" if local else "keda-kaito-scaler (its ScaledObject)"
    return (f"{low}..{high} replicas on {metrics}; windows {policy.evaluation_window_s}s up, "
            f"{policy.scale_down_cooldown_s}s down; by {who}")


async def run_describe(name: str, namespace: str, kubeconfig, context, home) -> int:
    from kaito.api import inferenceset
    from kaito.cluster import protocol
    from kaito.cluster.local import runner

    cluster, paths = open_target(kubeconfig, context, home)
    try:
        obj = await get_inferenceset(cluster, name, namespace)
        selector = {inferenceset.LABEL_CREATED_BY: name}
        children = (await cluster.list(protocol.WORKSPACE, namespace, selector)).items
        pods = (await cluster.list(protocol.POD, namespace, selector)).items
        events = (await cluster.list(protocol.EVENT, namespace)).items
    finally:
        await cluster.close()
    meta, spec, st = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    lines = [f"Name:         {meta['name']}", f"Namespace:    {meta.get('namespace', 'default')}",
             f"Created:      {meta.get('creationTimestamp', '')} ({compute_age(meta.get('creationTimestamp'))} ago)",
             f"Preset:       {_preset(obj) or '-'}",
             f"Replicas:     {spec.get('replicas')} desired, {st.get('readyReplicas', 0)} ready "
             f"(revision {(meta.get('annotations') or {}).get(inferenceset.ANNOTATION_REVISION, '-')})",
             f"Selector:     {st.get('selector') or '-'}",
             f"Autoscaling:  {_autoscaling_line(obj, paths is not None)}",
             "Conditions:"]
    for c in st.get("conditions") or []:
        lines.append(f"  {c.get('type', ''):<22} {c.get('status', ''):<6} {c.get('reason', ''):<24} {c.get('message', '')}")
    if not st.get("conditions"):
        lines.append("  (none yet: is the control plane running?)")
    lines.append("Replicas (child Workspaces):")
    for child in sorted(children, key=lambda c: c["metadata"]["name"]):
        cname = child["metadata"]["name"]
        mine = [p for p in pods if (p["metadata"].get("labels") or {}).get("kaito.sh/workspace") == cname]
        ready = _condition(child, "WorkspaceSucceeded").get("status") or "Unknown"
        going = " (deleting)" if child["metadata"].get("deletionTimestamp") else ""
        where = runner.find_local_endpoint(mine) if paths is not None else None
        lines.append(f"  {cname:<40} ready={ready:<8}{going} {where or ''}".rstrip())
    if not children:
        lines.append("  -")
    if paths is None:
        endpoint = f"- (on a cluster: an HTTPRoute to InferencePool {meta['name']}-inferencepool, or each child's Service)"
    else:
        down = control_plane_down(paths)
        endpoint = f"- ({down})" if down else (set_gateway_url(paths, name, namespace) or "- (not yet)")
    lines.append(f"Endpoint:     {endpoint}")
    names = {name} | {c["metadata"]["name"] for c in children}
    mine_events = [e for e in events if (e.get("involvedObject") or {}).get("name") in names]
    mine_events.sort(key=lambda e: e.get("lastTimestamp") or e["metadata"].get("creationTimestamp") or "")
    lines.append("Events:")
    for e in mine_events[-30:]:
        involved = e.get("involvedObject") or {}
        count = f" (x{e['count']})" if (e.get("count") or 1) > 1 else ""
        lines.append(f"  {e.get('type', ''):<8} {e.get('reason', ''):<24} {involved.get('kind', '')}/"
                     f"{involved.get('name', '')}: {e.get('message', '')}{count}")
    if not mine_events:
        lines.append("  -")
    typer.echo("\n".join(lines))
    return 0


async def run_delete(name: str, namespace: str, wait: bool, timeout: float, kubeconfig, context, home) -> int:
    """Delete the set; with `wait`, until it and its children (their processes and ports) are gone."""
    from kaito.api import inferenceset
    from kaito.cluster import errors, protocol

    cluster, _ = open_target(kubeconfig, context, home)
    try:
        try:
            await cluster.delete(protocol.INFERENCESET, name, namespace)
        except errors.NotFound:
            raise CliError(f'inferenceset "{name}" not found in namespace {namespace}') from None
        typer.echo(f'inferenceset.kaito.sh "{name}" deleted')
        deadline = time.monotonic() + timeout
        while wait and time.monotonic() < deadline:
            sets = (await cluster.list(protocol.INFERENCESET, namespace)).items
            pods = (await cluster.list(protocol.POD, namespace, {inferenceset.LABEL_CREATED_BY: name})).items
            if not any(s["metadata"]["name"] == name for s in sets) and not pods:
                return 0
            await asyncio.sleep(0.3)
        if wait:
            typer.echo(f"kaito delete: inferenceset {name} is still being deleted after {timeout:.0f}s", err=True)
            return 1
        return 0
    finally:
        await cluster.close()


def parse_target(resource: str, name: str | None) -> str:
    """`inferenceset NAME` or `inferenceset/NAME` (kubectl's forms) → NAME; exit 2 otherwise."""
    kind, _, inline = resource.partition("/")
    if kind.lower() not in RESOURCE_NAMES:
        typer.echo(f"kaito scale: unknown resource type {kind!r}: only inferencesets are scaled here", err=True)
        raise typer.Exit(2)
    target = inline or name
    if not target or (inline and name):
        typer.echo("kaito scale: name one inferenceset: `kaito scale inferenceset NAME --replicas N`", err=True)
        raise typer.Exit(2)
    return target


async def run_scale(name: str, replicas: int, namespace: str, kubeconfig, context, home) -> int:
    from kaito.cluster import errors, protocol

    cluster, _ = open_target(kubeconfig, context, home)
    try:
        try:
            await cluster.scale(protocol.INFERENCESET, name, namespace, replicas=replicas, field_manager=FIELD_MANAGER)
        except errors.NotFound:
            raise CliError(f'inferenceset "{name}" not found in namespace {namespace}') from None
    finally:
        await cluster.close()
    typer.echo(f"inferenceset.kaito.sh/{name} scaled")
    return 0


def register(app: typer.Typer) -> None:
    KIND_COMMANDS.append(KindCommands(names=RESOURCE_NAMES, get=run_get, describe=run_describe, delete=run_delete))

    @app.command("scale")
    def scale(
        resource: str = typer.Argument(..., help="inferenceset (or inferenceset/NAME)"),
        name: str = typer.Argument(None),
        replicas: int = typer.Option(..., "--replicas", min=0, help="the new spec.replicas"),
        namespace: str = NamespaceOption,
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """Set an InferenceSet's replicas through its scale subresource (as `kubectl scale`)."""
        run_async(run_scale, parse_target(resource, name), replicas, namespace, kubeconfig, context, home)
