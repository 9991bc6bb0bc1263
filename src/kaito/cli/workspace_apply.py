"""`kaito apply`: validate, refuse what the target cannot run, then write Workspaces, ConfigMaps, Secrets.

Kept apart from the read-side commands of `workspaces.py` because applying has its own checks:
`kaito validate`'s words first; only Workspace, ConfigMap and Secret are applied (anything else is
named as skipped, and a file with nothing applicable is an error); on the local cluster, images
that need a real cluster are refused, and nothing is written (not even the store file) unless the
local control plane runs. `--wait` then follows each Workspace's conditions until it succeeds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from kaito.cli.common import (
    CONDITION_COLUMNS,
    FIELD_MANAGER,
    CliError,
    ContextOption,
    HomeOption,
    KubeconfigOption,
    expand_sources,
    get_workspace,
    local_paths,
    open_target,
    run_async,
)

APPLIED_KINDS = {("Workspace", "kaito.sh/v1alpha1"), ("Workspace", "kaito.sh/v1beta1"), ("ConfigMap", "v1"),
                 ("Secret", "v1")}


def plan_applied(documents: list[Any]) -> tuple[list[dict], list[str]]:
    """(the objects `kaito apply` writes, a line for each document it skips and why)."""
    objects, skipped = [], []
    for data in documents:
        if not isinstance(data, dict):
            continue
        if (data.get("kind"), data.get("apiVersion")) in APPLIED_KINDS:
            objects.append(data)
        else:
            name = (data.get("metadata") or {}).get("name") if isinstance(data.get("metadata"), Mapping) else None
            skipped.append(f"skipped {data.get('kind') or '<no kind>'}/{name or '<no name>'} "
                           f"({data.get('apiVersion') or 'no apiVersion'}): only Workspace, ConfigMap and Secret "
                           "are applied")
    return objects, skipped


def check_local_images(workspaces: list, images_root: Path) -> list[str]:
    """Containers of these (hub) Workspaces that the local cluster cannot run (their images need a cluster)."""
    from kaito.cluster.local import runner
    from kaito.manifests import images
    from kaito.manifests.workspace import ManifestError, RenderSettings, build_workspace_objects

    problems = []
    for ws in workspaces:
        try:
            objects = build_workspace_objects(ws, RenderSettings())
        except ManifestError as exc:
            problems.append(f"workspace {ws.name}: {exc}")
            continue
        for obj in objects:
            for c in runner.find_containers_needing_cluster(obj, is_runtime_image=images.is_runtime_image,
                                                            images_root=images_root):
                problems.append(
                    f"workspace {ws.name}: container {c.get('name')} uses image {c.get('image')}, which the local "
                    f"cluster cannot run (only kaito's runtime image and local images under {images_root}); "
                    "apply it to a Kubernetes cluster with --kubeconfig")
    return problems


async def run_apply(files: list[str], kubeconfig, context, home, wait: bool, timeout: float) -> int:
    from kaito.cli.validate import check_sources
    from kaito.cluster import protocol
    from kaito.operator import controlplane

    local = kubeconfig is None and context is None
    # Read once (standard input cannot be read twice); the documents validated are the ones written.
    inputs, unreadable = expand_sources(files)
    # To the local cluster, URLs on this machine are the user's own.
    checked = check_sources(inputs, unreadable, quiet=True, allow_local_urls=local)
    if checked.code != 0:
        return 1
    docs = checked.documents
    objects, skipped = plan_applied([d.data for d in docs])
    for line in skipped:
        typer.echo(f"kaito apply: {line}", err=True)
    if not objects:
        raise CliError("nothing to apply: no Workspace, ConfigMap or Secret in " + ", ".join(files))
    if local:
        paths = local_paths(home)
        problems = check_local_images([d.hub for d in docs if d.hub is not None], paths.home / "images")
        if problems:
            for p in problems:
                typer.echo(f"kaito apply: {p}", err=True)
            return 1
        if controlplane.running_pid(paths) is None:
            raise CliError(f"no local control plane runs for {paths.home}: start it with `kaito up --detach` "
                           "first (nothing was applied)")
    cluster, _ = open_target(kubeconfig, context, home)
    try:
        for obj in objects:
            meta = obj.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            kind = protocol.kind_of(obj)
            try:
                before = await cluster.get(kind, meta.get("name", ""), meta["namespace"])
            except Exception:  # noqa: BLE001 - absent (or unreadable): report as created
                before = None
            after = await cluster.apply(obj, field_manager=FIELD_MANAGER)
            verb = ("created" if before is None else
                    "unchanged" if before["metadata"].get("resourceVersion") == after["metadata"].get("resourceVersion")
                    else "configured")
            typer.echo(f"{kind.kind.lower()}.{kind.group or 'core'}/{meta.get('name')} {verb}")
        if wait:
            for obj in objects:
                if obj.get("kind") == "Workspace":
                    code = await wait_ready(cluster, obj["metadata"]["name"], obj["metadata"]["namespace"], timeout)
                    if code:
                        return code
        return 0
    finally:
        await cluster.close()


async def wait_ready(cluster, name: str, namespace: str, timeout: float) -> int:
    """Until the Workspace succeeds (0), fails for good (1) or the timeout passes (1); prints progress."""
    from kaito.api.conditions import Outcome, compute_outcome

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ws = await get_workspace(cluster, name, namespace)
        conditions = (ws.get("status") or {}).get("conditions") or []
        conds = {c.get("type"): c for c in conditions}
        summary = " ".join(f"{t}={conds[t].get('status')}" for t in CONDITION_COLUMNS if t in conds)
        if summary != last:
            typer.echo(f"  {name}: {summary or 'pending'}", err=True)
            last = summary
        outcome = compute_outcome(conditions)
        if outcome is Outcome.SUCCEEDED:
            return 0
        if outcome is Outcome.FAILED:
            typer.echo(f"kaito: workspace {name} failed: {conds['WorkspaceSucceeded'].get('message')}", err=True)
            return 1
        await asyncio.sleep(0.5)
    typer.echo(f"kaito: workspace {name} not ready after {timeout:.0f}s (see `kaito describe workspace {name}`)",
               err=True)
    return 1


def register(app: typer.Typer) -> None:
    @app.command("apply")
    def apply(
        filename: list[str] = typer.Option(..., "-f", "--filename", help="YAML file, directory or - (repeatable)"),
        wait: bool = typer.Option(False, "--wait", help="wait until every Workspace succeeds"),
        timeout: float = typer.Option(600, "--timeout", help="seconds --wait waits"),
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """Validate, then create or update the Workspaces (and ConfigMaps/Secrets) of FILE."""
        run_async(run_apply, filename, kubeconfig, context, home, wait, timeout)
