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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
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


def admission_inputs(documents: list, allow_local_urls: bool = False, provision_nodes: bool = True,
                     vllm_available: bool = True):
    """(AdmissionOptions, ClusterReads) for Workspaces read from files: the URL policy and node
    provisioning asked for, whether the target runs vLLM pods (a local cluster may not), and the
    ConfigMaps found in the same files as what was "read" (not complete: a ConfigMap in no file may
    exist in the cluster, so it is only warned about)."""
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
    return (AdmissionOptions(url_policy=policy, auto_provisioning=provision_nodes, vllm_available=vllm_available),
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


def check_home(paths):
    """`paths` when its home is a folder or does not exist yet; `StateNotAccessible` (one line naming
    it) when something else is there, such as a file."""
    from kaito.cluster.local import storefile

    if paths.home.exists() or paths.home.is_symlink():
        storefile.ensure_dir(paths.home)
    return paths


def open_target(kubeconfig: Path | None, context: str | None, home: Path | None, *, must_exist: bool = True,
                vllm_available: bool = True):
    """(cluster, local paths or None): a real cluster with `--kubeconfig`/`--context`, else the local one
    (its store judging writes as its control plane does: `vllm_available` is what the plane recorded)."""
    if kubeconfig is not None or context is not None:
        from kaito.cluster.kube import KubeCluster

        return KubeCluster.from_kubeconfig(kubeconfig, context), None
    from kaito.cluster.local import LocalCluster
    from kaito.operator import controlplane

    paths = check_home(local_paths(home))
    if must_exist and not paths.store.exists() and not paths.store.is_symlink():
        raise CliError(f"no local cluster in {paths.home}: start one with `kaito up --detach`")
    return LocalCluster(paths.store, admission=controlplane.build_local_admission(vllm_available)), paths


def plane_problem(paths) -> str | None:
    """One line saying why nothing reconciles the local cluster of `paths` (no control plane runs,
    it failed to start, it hangs: its heartbeat is old), or None (it is ready; or `paths` is None,
    a real cluster)."""
    from kaito.operator import controlplane

    if paths is None:
        return None
    return controlplane.observe_plane(paths).problem()


def control_plane_down(paths) -> str | None:
    """Why a local endpoint would be dead (no control plane runs, so no model server does), or None.
    A plane that hangs still has its model servers: their endpoints stay usable."""
    from kaito.operator import controlplane

    if paths is None:
        return None
    state = controlplane.observe_plane(paths)
    if state.pid is not None:
        return None
    return f"{state.problem()}, so no model server is"


@dataclass(frozen=True, kw_only=True)
class CliKind:
    """A kind the read and access commands (`get`, `describe`, `delete`, `endpoint`, `logs`) take."""

    name: str  # singular, as kubectl prints it (`workspace.kaito.sh/x`)
    resource: str  # the attribute of `kaito.cluster.protocol` naming its storage version
    aliases: tuple[str, ...]  # what `kaito get ALIAS` accepts
    pod_label: str  # the label whose value is the object's name on its pods
    columns: tuple[str, ...]  # KAITO's printer columns after INSTANCE: condition types
    succeeded: str  # the condition that says it is done (`kaito apply --wait`)
    failed_reasons: tuple[str, ...]  # reasons of `succeeded`=False that waiting will not change


WORKSPACE_KIND = CliKind(
    name="workspace", resource="WORKSPACE",
    aliases=("workspace", "workspaces", "ws", "wk", "workspace.kaito.sh", "workspaces.kaito.sh"),
    pod_label="kaito.sh/workspace", columns=CONDITION_COLUMNS, succeeded="WorkspaceSucceeded",
    failed_reasons=("workspaceFailed",))
RAGENGINE_KIND = CliKind(
    name="ragengine", resource="RAGENGINE",
    aliases=("ragengine", "ragengines", "rag", "ragengine.kaito.sh", "ragengines.kaito.sh"),
    pod_label="kaito.sh/ragengine", columns=("ResourceReady", "ServiceReady"), succeeded="RAGEngineSucceeded",
    failed_reasons=("ragengineFailed", "ragengineValidationFailed"))
CLI_KINDS = (WORKSPACE_KIND, RAGENGINE_KIND)


def resolve_kind(resource: str) -> CliKind:
    """The kind `resource` names (`workspaces`, `rag`, ...); exit 2 with one line for anything else."""
    for kind in CLI_KINDS:
        if resource.lower() in kind.aliases:
            return kind
    served = ", ".join([CLI_KINDS[0].aliases[1], *(k.names[1] for k in KIND_COMMANDS), *(k.aliases[1] for k in CLI_KINDS[1:])])
    typer.echo(f"kaito: unknown resource type {resource!r}: {served} are served here", err=True)
    raise typer.Exit(2)


def instance_type_of(obj: Mapping[str, Any]) -> str:
    """`resource.instanceType` of a Workspace, `spec.compute.instanceType` of a RAGEngine."""
    section = (obj.get("spec") or {}).get("compute") if obj.get("kind") == "RAGEngine" else obj.get("resource")
    return (section or {}).get("instanceType") or ""


def build_kind_row(kind: CliKind, obj: Mapping[str, Any]) -> list[str]:
    """KAITO's printer columns of any kind: NAME, INSTANCE, its conditions, AGE."""
    meta = obj.get("metadata") or {}
    return [meta.get("name", ""), instance_type_of(obj), *(condition_status(obj, c) for c in kind.columns),
            compute_age(meta.get("creationTimestamp"))]


async def get_object(cluster, kind: CliKind, name: str, namespace: str) -> dict:
    from kaito.cluster import errors, protocol

    try:
        return await cluster.get(getattr(protocol, kind.resource), name, namespace)
    except errors.NotFound:
        raise CliError(f'{kind.name} "{name}" not found in namespace {namespace}') from None


async def find_object(cluster, name: str, namespace: str, kinds: tuple[CliKind, ...] = CLI_KINDS
                      ) -> tuple[CliKind, dict]:
    """The first of `kinds` with an object named `name` (a Workspace before a RAGEngine)."""
    from kaito.cluster import errors, protocol

    for kind in kinds:
        try:
            return kind, await cluster.get(getattr(protocol, kind.resource), name, namespace)
        except errors.NotFound:
            continue
    raise CliError(f'no {" or ".join(k.name for k in kinds)} named "{name}" in namespace {namespace}')


async def list_kind_pods(cluster, kind: CliKind, name: str, namespace: str) -> list[dict]:
    from kaito.cluster import protocol

    return (await cluster.list(protocol.POD, namespace, labels={kind.pod_label: name})).items


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
    except (errors.LocalStateError, errors.Invalid) as exc:  # their messages name the file or the fields
        typer.echo(f"kaito: {exc}", err=True)
        code = 1
    except errors.ClusterError as exc:
        typer.echo(f"kaito: {type(exc).__name__}: {exc}", err=True)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


# -- kinds beside Workspaces in `kaito get/describe/delete` (each kind's module registers itself) --


@dataclass(frozen=True, kw_only=True)
class KindCommands:
    """How `kaito get/describe/delete RESOURCE` serve one more kind (an InferenceSet, say).

    `get(name, output, namespace, all_namespaces, kubeconfig, context, home, api_version)`,
    `describe(name, namespace, kubeconfig, context, home)` and
    `delete(name, namespace, wait, timeout, kubeconfig, context, home)` are coroutines for `run_async`.
    """

    names: tuple[str, ...]  # the resource words that name the kind (plural, singular, short names)
    get: Callable[..., Awaitable[int]]
    describe: Callable[..., Awaitable[int]]
    delete: Callable[..., Awaitable[int]]


KIND_COMMANDS: list[KindCommands] = []


def find_kind_commands(resource: str) -> KindCommands | None:
    word = resource.lower()
    return next((k for k in KIND_COMMANDS if word in k.names), None)


async def get_inferenceset(cluster, name: str, namespace: str) -> dict:
    from kaito.cluster import errors, protocol

    try:
        return await cluster.get(protocol.INFERENCESET, name, namespace)
    except errors.NotFound:
        raise CliError(f'inferenceset "{name}" not found in namespace {namespace}') from None


def set_gateway_url(paths, name: str, namespace: str) -> str | None:
    """The local gateway URL of InferenceSet `name` while the control plane serves it, else None."""
    from kaito.operator import controlplane

    return controlplane.read_set_endpoints(paths).get(f"{namespace}/{name}") if paths is not None else None


async def find_set_endpoint(cluster, paths, name: str, namespace: str) -> str | None:
    """The gateway URL of local InferenceSet `name` (`kaito endpoint` and `kaito chat` for a set);
    None when there is no such set, a `CliError` when it has no gateway yet."""
    from kaito.cluster import errors, protocol

    try:
        await cluster.get(protocol.INFERENCESET, name, namespace)
    except errors.NotFound:
        return None
    url = set_gateway_url(paths, name, namespace)
    if url is None:
        raise CliError(f"inferenceset {name} has no local gateway yet (see `kaito describe inferenceset {name}`)")
    return url


async def read_local_vllm(cluster):
    """What the local control plane recorded about vLLM (`kaito.cluster.local.vllm_runtime`), None when
    `cluster` is a real one or nothing was recorded: a cluster runs vLLM pods then."""
    from kaito.cluster.local import LocalCluster, vllm_runtime

    if not isinstance(cluster, LocalCluster):
        return None
    return await vllm_runtime.read_vllm_runtime(cluster)


def describe_engine(ws: Mapping[str, Any], pods: list[dict], vllm=None) -> tuple[str, str | None]:
    """(engine, why) for `kaito get -o wide` and `kaito describe`: the engine the Workspace's model
    server runs (its pods' `--engine`; before any pod, the runtime admission chose), and, when a local
    cluster without vLLM (`vllm`, its `VllmRuntime`) runs on transformers what KAITO would run on vLLM,
    why. "-" for tuning and template Workspaces."""
    from kaito.api import conversion
    from kaito.api.admission import AdmissionOptions
    from kaito.api.validation import compute_runtime, compute_runtime_fallback, written_rules

    try:
        hub, _ = conversion.parse_workspace(dict(ws))
    except conversion.ParseError:
        return "-", None
    if hub.inference is None or hub.inference.preset is None:
        return "-", None
    facts = build_facts("azure")
    rules = written_rules(hub, conversion.recorded_version(ws))
    options = AdmissionOptions(vllm_available=vllm is None or vllm.available)
    chosen = compute_runtime(hub, facts, options, rules=rules)
    running = next((arg.split("=", 1)[1] for pod in pods for c in (pod.get("spec") or {}).get("containers") or []
                    for arg in c.get("args") or [] if str(arg).startswith("--engine=")), None)
    engine = running or chosen
    if vllm is None or vllm.available:
        return engine, None
    return engine, compute_runtime_fallback(hub, facts, engine, rules=rules)
