"""`kaito apply`: validate, refuse what the target cannot run, then write Workspaces, InferenceSets,
RAGEngines, ConfigMaps and Secrets.

Kept apart from the read-side commands of `workspaces.py` because applying has its own checks:
`kaito validate`'s words first; only those kinds are applied (anything else is
named as skipped, and a file with nothing applicable is an error); on the local cluster, images
that need a real cluster are refused, and nothing is written (not even the store file) unless the
local control plane runs. `--wait` then follows each Workspace's and RAGEngine's conditions until it
succeeds (an InferenceSet's until `InferenceSetReady`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from kaito.cli.common import (
    CLI_KINDS,
    FIELD_MANAGER,
    CliError,
    CliKind,
    ContextOption,
    HomeOption,
    KubeconfigOption,
    check_home,
    expand_sources,
    get_object,
    local_paths,
    open_target,
    plane_problem,
    read_local_vllm,
    run_async,
)

APPLIED_KINDS = {("Workspace", "kaito.sh/v1alpha1"), ("Workspace", "kaito.sh/v1beta1"), ("ConfigMap", "v1"),
                 ("Secret", "v1"), ("InferenceSet", "kaito.sh/v1alpha1"), ("InferenceSet", "kaito.sh/v1beta1"),
                 ("RAGEngine", "kaito.sh/v1alpha1"), ("RAGEngine", "kaito.sh/v1beta1")}
APPLIED_NAMES = "Workspace, InferenceSet, RAGEngine, ConfigMap and Secret"


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
                           f"({data.get('apiVersion') or 'no apiVersion'}): only {APPLIED_NAMES} are applied")
    return objects, skipped


def as_workspace(parsed):
    """What runs for a parsed document: a Workspace itself, an InferenceSet's child; None for others."""
    from kaito.api import hub, inferenceset

    if isinstance(parsed, inferenceset.InferenceSet):
        return inferenceset.build_child_workspace(parsed, name=f"{parsed.name}-x")
    return parsed if isinstance(parsed, hub.Workspace) else None


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


def check_updates(docs: list, objects: list[dict], befores: list[dict | None], local: bool) -> bool:
    """KAITO's UPDATE rules for each Workspace that exists already (`befores`: the stored objects, in
    the version written); prints each refusal at its file and line. False: something is refused."""
    from kaito.api.admission import admit
    from kaito.cli.common import admission_inputs, build_facts

    by_data = {id(d.data): d for d in docs}
    options, reads = admission_inputs(docs, allow_local_urls=local)
    facts = build_facts("azure")
    ok = True
    for obj, before in zip(objects, befores, strict=True):
        if before is None or obj.get("kind") != "Workspace":
            continue
        verdict = admit(obj, before, facts=facts, options=options, reads=reads)
        doc = by_data.get(id(obj))
        for error in verdict.errors:
            ok = False
            typer.echo(str(doc.place(error)) if doc is not None else f"{obj['metadata'].get('name')}: error: {error}")
    if not ok:
        typer.echo("kaito apply: refused by the update rules of Workspaces that exist (nothing was applied)",
                   err=True)
    return ok


async def run_apply(files: list[str], kubeconfig, context, home, wait: bool, timeout: float) -> int:
    from kaito.cli.validate import check_sources
    from kaito.cluster import protocol
    from kaito.operator import controlplane

    local = kubeconfig is None and context is None
    # Read once (standard input cannot be read twice); the documents validated are the ones written.
    inputs, unreadable = expand_sources(files)
    # To the local cluster, URLs on this machine are the user's own, and vLLM is there only if its
    # control plane found an interpreter for it: admission answers as that plane's controller will.
    vllm = await _local_vllm(home) if local else None
    checked = check_sources(inputs, unreadable, quiet=True, allow_local_urls=local,
                            vllm_available=vllm is None or vllm.available)
    if checked.code != 0:
        return 1
    docs = checked.documents
    objects, skipped = plan_applied([d.data for d in docs])
    for line in skipped:
        typer.echo(f"kaito apply: {line}", err=True)
    if not objects:
        raise CliError("nothing to apply: no Workspace, InferenceSet, RAGEngine, ConfigMap or Secret in "
                       + ", ".join(files))
    if local:
        paths = local_paths(home)
        problems = check_local_images([as_workspace(d.hub) for d in docs if as_workspace(d.hub) is not None],
                                      paths.home / "images")
        if problems:
            for p in problems:
                typer.echo(f"kaito apply: {p}", err=True)
            return 1
        problem = controlplane.observe_plane(check_home(paths)).problem()
        if problem:
            raise CliError(f"{problem}: nothing was applied")
    cluster, paths = open_target(kubeconfig, context, home, vllm_available=vllm is None or vllm.available)
    try:
        befores = []
        for obj in objects:
            meta = obj.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            try:
                befores.append(await cluster.get(protocol.kind_of(obj), meta.get("name", ""), meta["namespace"]))
            except Exception:  # noqa: BLE001 - absent (or unreadable): report as created
                befores.append(None)
        # Updates pass the UPDATE rules before anything is written (the target's admission judges
        # each write again: the local store itself, a cluster's webhook), so no file is half-applied.
        if not check_updates(docs, objects, befores, local):
            return 1
        for obj, before in zip(objects, befores, strict=True):
            meta, kind = obj["metadata"], protocol.kind_of(obj)
            after = await cluster.apply(obj, field_manager=FIELD_MANAGER)
            verb = ("created" if before is None else
                    "unchanged" if before["metadata"].get("resourceVersion") == after["metadata"].get("resourceVersion")
                    else "configured")
            typer.echo(f"{kind.kind.lower()}.{kind.group or 'core'}/{meta.get('name')} {verb}")
        if wait:
            for obj in objects:
                kind = next((k for k in CLI_KINDS if k.name == str(obj.get("kind")).lower()), None)
                if kind is not None or obj.get("kind") == "InferenceSet":
                    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
                    code = (await wait_ready(cluster, kind, name, namespace, timeout, paths) if kind is not None
                            else await wait_set_ready(cluster, name, namespace, timeout, paths))
                    if code:
                        return code
        return 0
    finally:
        await cluster.close()


async def _local_vllm(home):
    """The local control plane's vLLM record (None: no store yet, or nothing recorded)."""
    from kaito.cluster.local import LocalCluster
    from kaito.operator import controlplane

    paths = local_paths(home)
    if not paths.store.exists():
        return None
    cluster = LocalCluster(paths.store, admission=controlplane.build_local_admission())  # read only
    try:
        return await read_local_vllm(cluster)
    finally:
        await cluster.close()


async def wait_ready(cluster, kind: CliKind, name: str, namespace: str, timeout: float, paths=None) -> int:
    """Until the object succeeds (0), fails for good (1), the timeout passes (1) or, on the local
    cluster of `paths`, its control plane stops or hangs (1: nothing would make it ready); prints progress."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        obj = await get_object(cluster, kind, name, namespace)
        conds = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
        shown = dict.fromkeys((*kind.columns, kind.succeeded))  # each condition once, in column order
        summary = " ".join(f"{t}={conds[t].get('status')}" for t in shown if t in conds)
        if summary != last:
            typer.echo(f"  {name}: {summary or 'pending'}", err=True)
            last = summary
        done = conds.get(kind.succeeded) or {}
        if done.get("status") == "True":
            return 0
        if done.get("status") == "False" and done.get("reason") in kind.failed_reasons:
            typer.echo(f"kaito: {kind.name} {name} failed: {done.get('message')}", err=True)
            return 1
        problem = plane_problem(paths)
        if problem:
            typer.echo(f"kaito: stopped waiting for {kind.name} {name}: {problem}", err=True)
            return 1
        await asyncio.sleep(0.5)
    typer.echo(f"kaito: {kind.name} {name} not ready after {timeout:.0f}s (see `kaito describe {kind.name} {name}`)",
               err=True)
    return 1


async def wait_set_ready(cluster, name: str, namespace: str, timeout: float, paths=None) -> int:
    """Until the InferenceSet's replicas are all ready (0), the timeout passes (1) or the local control
    plane of `paths` stops or hangs (1); prints progress."""
    from kaito.cli.common import get_inferenceset

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        obj = await get_inferenceset(cluster, name, namespace)
        status = obj.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "InferenceSetReady"), {})
        summary = f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas')} replicas ready"
        if summary != last:
            typer.echo(f"  {name}: {summary}", err=True)
            last = summary
        if ready.get("status") == "True" and ready.get("observedGeneration") == obj["metadata"].get("generation"):
            return 0
        problem = plane_problem(paths)
        if problem:
            typer.echo(f"kaito: stopped waiting for inferenceset {name}: {problem}", err=True)
            return 1
        await asyncio.sleep(0.5)
    typer.echo(f"kaito: inferenceset {name} not ready after {timeout:.0f}s (see `kaito describe inferenceset {name}`)",
               err=True)
    return 1


def register(app: typer.Typer) -> None:
    @app.command("apply")
    def apply(
        filename: list[str] = typer.Option(..., "-f", "--filename", help="YAML file, directory or - (repeatable)"),
        wait: bool = typer.Option(False, "--wait", help="wait until every Workspace and RAGEngine succeeds (every "
                                                        "InferenceSet is ready)"),
        timeout: float = typer.Option(600, "--timeout", help="seconds --wait waits"),
        kubeconfig: Path = KubeconfigOption, context: str = ContextOption, home: Path = HomeOption,
    ) -> None:
        """Validate, then create or update the Workspaces, InferenceSets, RAGEngines, ConfigMaps and Secrets of FILE."""
        run_async(run_apply, filename, kubeconfig, context, home, wait, timeout)
