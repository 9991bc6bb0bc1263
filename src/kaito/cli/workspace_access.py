"""`kaito logs`, `kaito endpoint`, `kaito chat`: reaching a Workspace's (or RAGEngine's) pods locally.

The endpoint is the local port the runner gave the server's port 5000 (recorded on its Pod);
for an InferenceSet (a name that is no Workspace or RAGEngine), its local gateway (`common.find_set_endpoint`),
and only while the local control plane runs (the pod processes stop with it, so a Pod the store
still calls Ready after a SIGKILL is no endpoint); a server that cannot be reached is a one-line error;
`chat` speaks the OpenAI API of that endpoint with httpx (the `openai` package is not a dependency
of the base install); `logs` reads the pod log files the runner writes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from kaito.cli.common import (
    CLI_KINDS,
    WORKSPACE_KIND,
    CliError,
    CliKind,
    HomeOption,
    NamespaceOption,
    control_plane_down,
    find_object,
    find_set_endpoint,
    list_kind_pods,
    open_target,
    run_async,
)


async def _local_endpoint(name: str, namespace: str, home, kinds: tuple[CliKind, ...] = CLI_KINDS) -> str:
    """The local URL of the server of Workspace (or RAGEngine) `name`, or of InferenceSet `name`'s
    gateway; a one-line error otherwise."""
    from kaito.cluster.local import runner

    cluster, paths = open_target(None, None, home)
    try:
        down = control_plane_down(paths)
        if down:
            raise CliError(down)  # the Pods in the store may still say Ready: their processes are gone
        try:
            kind, _ = await find_object(cluster, name, namespace, kinds)
        except CliError:
            gateway = await find_set_endpoint(cluster, paths, name, namespace)
            if gateway is None:
                raise CliError(f'no {" or ".join(k.name for k in kinds)} (or inferenceset) named "{name}" in '
                               f"namespace {namespace}") from None
            return gateway
        endpoint = runner.find_local_endpoint(await list_kind_pods(cluster, kind, name, namespace))
    finally:
        await cluster.close()
    if endpoint is None:
        server = "model server" if kind is WORKSPACE_KIND else "service"
        raise CliError(f"{kind.name} {name} has no ready {server} yet (see `kaito describe {kind.name} {name}`)")
    return endpoint


async def run_endpoint(name: str, namespace: str, home) -> int:
    typer.echo(await _local_endpoint(name, namespace, home))
    return 0


async def run_logs(name: str, namespace: str, follow: bool, home) -> int:
    from kaito.cluster.local import runner

    cluster, _ = open_target(None, None, home)
    try:
        kind, _ = await find_object(cluster, name, namespace)
        paths = runner.find_pod_logs(await list_kind_pods(cluster, kind, name, namespace))
    finally:
        await cluster.close()
    if not paths:
        raise CliError(f"{kind.name} {name} has no pod logs yet")
    offsets: dict[Path, int] = {}
    for path in paths:
        data = path.read_bytes()
        sys.stdout.write(data.decode(errors="replace"))
        offsets[path] = len(data)
    sys.stdout.flush()
    while follow:
        await asyncio.sleep(0.5)
        for path in paths:
            with open(path, "rb") as f:
                f.seek(offsets[path])
                chunk = f.read()
            offsets[path] += len(chunk)
            sys.stdout.write(chunk.decode(errors="replace"))
        sys.stdout.flush()
    return 0


async def run_chat(name: str, prompt: str | None, namespace: str, max_tokens: int, home) -> int:
    import httpx

    endpoint = await _local_endpoint(name, namespace, home, (WORKSPACE_KIND,))
    try:
        return await _chat(endpoint, name, prompt, max_tokens)
    except httpx.HTTPError as exc:
        raise CliError(f"model server at {endpoint} is not reachable: {exc or type(exc).__name__}") from None
    except (ValueError, KeyError, IndexError) as exc:  # an answer that is not the OpenAI API's JSON
        raise CliError(f"model server at {endpoint} gave an answer that is not OpenAI API JSON: {exc}") from None


async def _chat(endpoint: str, name: str, prompt: str | None, max_tokens: int) -> int:
    import httpx

    async with httpx.AsyncClient(base_url=endpoint, timeout=300) as client:
        models = (await client.get("/v1/models")).json().get("data") or []
        model = models[0]["id"] if models else name
        history: list[dict[str, str]] = []

        async def ask(text: str) -> str:
            history.append({"role": "user", "content": text})
            resp = await client.post("/v1/chat/completions", json={"model": model, "messages": history,
                                                                    "max_tokens": max_tokens})
            if resp.status_code != 200:
                raise CliError(f"the model server answered {resp.status_code}: {resp.text[:300]}")
            answer = resp.json()["choices"][0]["message"]["content"]
            history.append({"role": "assistant", "content": answer})
            return answer

        if prompt is not None:
            typer.echo(await ask(prompt))
            return 0
        typer.echo(f"chatting with {model} at {endpoint}; an empty line or Ctrl-D ends", err=True)
        while True:
            try:
                text = await asyncio.to_thread(input, "> ")
            except EOFError:
                return 0
            if not text.strip():
                return 0
            typer.echo(await ask(text))


def register(app: typer.Typer) -> None:
    @app.command("logs")
    def logs(name: str = typer.Argument(...), follow: bool = typer.Option(False, "-f", "--follow"),
             namespace: str = NamespaceOption, home: Path = HomeOption) -> None:
        """Logs of a Workspace's (or RAGEngine's) pods on the local cluster."""
        run_async(run_logs, name, namespace, follow, home)

    @app.command("endpoint")
    def endpoint(name: str = typer.Argument(...), namespace: str = NamespaceOption, home: Path = HomeOption) -> None:
        """The local URL of a Workspace's model server or an InferenceSet's gateway (OpenAI API under /v1), or
        of a RAGEngine's service (KAITO's RAG API)."""
        run_async(run_endpoint, name, namespace, home)

    @app.command("chat")
    def chat(name: str = typer.Argument(...), prompt: str = typer.Argument(None, help="omit for a conversation"),
             namespace: str = NamespaceOption, max_tokens: int = typer.Option(128, "--max-tokens"),
             home: Path = HomeOption) -> None:
        """Send a chat message to a Workspace's or InferenceSet's model (or chat interactively)."""
        run_async(run_chat, name, prompt, namespace, max_tokens, home)
