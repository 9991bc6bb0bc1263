"""`kaito ui NAME`: open the chat page (`/ui`) of a model server or RAG service on the local cluster.

The kinds it knows are data (`UI_KINDS`): each says which resource the name may be, which label
selects its pods and which container port serves the page. A kind that serves a chat page (an
InferenceSet, a RAGEngine) is one more entry. Prints the URL, and opens it where a browser can start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from kaito.api import labels, ragengine
from kaito.cli.common import (
    CliError,
    HomeOption,
    NamespaceOption,
    control_plane_down,
    open_in_browser,
    open_target,
    run_async,
)


@dataclass(frozen=True, kw_only=True)
class UiKind:
    name: str  # as typed after --kind
    resource: str  # the attribute of `kaito.cluster.protocol` naming the resource
    pod_label: str  # the label whose value is the object's name on its pods
    port: int = 5000  # the container port that serves /ui


UI_KINDS: tuple[UiKind, ...] = (
    UiKind(name="workspace", resource="WORKSPACE", pod_label=labels.LABEL_WORKSPACE_NAME),
    # A set's replicas all serve the set's one model name: any ready one's page chats with the set.
    UiKind(name="inferenceset", resource="INFERENCESET", pod_label="inferenceset.kaito.sh/created-by"),
    UiKind(name="ragengine", resource="RAGENGINE", pod_label=ragengine.LABEL_RAGENGINE),
)


async def find_ui_url(name: str, namespace: str, kind_name: str | None, home) -> str:
    from kaito.cluster import errors, protocol
    from kaito.cluster.local import runner

    kinds = [k for k in UI_KINDS if kind_name in (None, k.name)]
    if not kinds:
        raise CliError(f"unknown kind {kind_name!r}: one of {', '.join(k.name for k in UI_KINDS)}")
    cluster, paths = open_target(None, None, home)
    try:
        down = control_plane_down(paths)
        if down:
            raise CliError(down)
        for kind in kinds:
            try:
                await cluster.get(getattr(protocol, kind.resource), name, namespace)
            except errors.NotFound:
                continue
            pods = (await cluster.list(protocol.POD, namespace, labels={kind.pod_label: name})).items
            endpoint = runner.find_local_endpoint(pods, kind.port)
            if endpoint is None:
                raise CliError(f"{kind.name} {name} has no ready server yet (see `kaito describe {kind.name} {name}`)")
            return endpoint + "/ui"
    finally:
        await cluster.close()
    raise CliError(f'no {" or ".join(k.name for k in kinds)} named "{name}" in namespace {namespace}')


async def run_ui(name: str, namespace: str, kind: str | None, no_browser: bool, home) -> int:
    open_in_browser(await find_ui_url(name, namespace, kind, home), no_browser)
    return 0


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(name: str = typer.Argument(..., help="a Workspace or InferenceSet serving a model, or a RAGEngine"),
           kind: str = typer.Option(None, "--kind", help="the kind of NAME when several kinds share it"),
           no_browser: bool = typer.Option(False, "--no-browser", help="only print the URL"),
           namespace: str = NamespaceOption, home: Path = HomeOption) -> None:
        """Open the chat page of a Workspace's (or InferenceSet's) model server or of a RAGEngine's service in a
        browser (or print its URL)."""
        run_async(run_ui, name, namespace, kind, no_browser, home)
