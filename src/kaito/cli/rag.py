"""`kaito rag …`: the RAG service's commands — `serve` it, `index` files into it, `ask` it.

`serve` forwards every argument to `kaito.runtime.rag`, imported only when the command runs, so
`kaito --help` never loads torch or FAISS. `index` and `ask` are clients of a running service: a
RAGEngine on the local cluster by name (its pod's local port), or any RAG service by URL.

`index` reads every file first — text, Markdown, code (`split_type: code` and the language its
extension says, as KAITO's service expects), directories recursively (files with a known text
extension) — and sends nothing when one cannot be read as text: one line per such file, exit 1.
Then it posts the documents in batches with a progress bar (plain lines in a pipe). `ask` sends
one question through `/v1/chat/completions` with `index_name` and prints the answer and its sources.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from kaito.cli.common import (
    RAGENGINE_KIND,
    CliError,
    HomeOption,
    NamespaceOption,
    control_plane_down,
    get_object,
    list_kind_pods,
    open_target,
    run_async,
)

# Extension → the language KAITO's service splits by (`kaito.runtime.rag.chunking.GRAMMARS`, and
# Markdown at headings); a test keeps these names the service's.
CODE_LANGUAGES = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript", ".tsx": "tsx",
    ".go": "go", ".java": "java", ".rs": "rust", ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp",
    ".hpp": "cpp", ".cs": "c_sharp", ".sh": "bash", ".bash": "bash", ".md": "markdown", ".markdown": "markdown",
}
TEXT_SUFFIXES = {".txt", ".text", ".rst", ".adoc", ".csv", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg",
                 ".html", ".htm", ".xml", ".tex", ".log"}
BATCH_DOCUMENTS = 16
BATCH_BYTES = 512 * 1024
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass
class Collected:
    documents: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per file that cannot be indexed
    skipped: int = 0  # files in directories with no text extension


def _document(path: Path, text: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"source": str(path), "file_name": path.name}
    language = CODE_LANGUAGES.get(path.suffix.lower())
    if language is not None:
        metadata.update({"split_type": "code", "language": language})
    return {"text": text, "metadata": metadata}


def _read(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, why it cannot be indexed)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, f"{size // (1024 * 1024)} MiB: larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB a document may be"
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    if b"\x00" in data:
        return None, "not a text file (it holds NUL bytes: binary data)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start}): convert it to UTF-8 first"
    if not text.strip():
        return None, "empty: nothing to index"
    return text, None


def collect_documents(names: list[str]) -> Collected:
    """The documents of files and directories (recursively, hidden ones left out), in a stable order."""
    out = Collected()
    seen: set[Path] = set()
    for name in names:
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            known = [p for p in files if p.suffix.lower() in CODE_LANGUAGES or p.suffix.lower() in TEXT_SUFFIXES]
            out.skipped += len(files) - len(known)
            if not known:
                out.problems.append(f"{name}: no text, Markdown or code files in this directory")
        elif path.exists():
            known = [path]
        else:
            out.problems.append(f"{name}: no such file or directory")
            continue
        for file in known:
            if file.resolve() in seen:
                continue
            seen.add(file.resolve())
            text, problem = _read(file)
            if problem is not None:
                out.problems.append(f"{file}: {problem}")
            else:
                out.documents.append(_document(file, text or ""))
    return out


def plan_batches(documents: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Documents grouped into requests of at most `BATCH_DOCUMENTS` documents or about `BATCH_BYTES`."""
    batches: list[list[dict[str, Any]]] = []
    size = 0
    for doc in documents:
        length = len(doc["text"].encode())
        if not batches or len(batches[-1]) >= BATCH_DOCUMENTS or (size + length > BATCH_BYTES and batches[-1]):
            batches.append([])
            size = 0
        batches[-1].append(doc)
        size += length
    return batches


async def resolve_service(target: str, namespace: str, home) -> str:
    """A URL as given, else the local port of RAGEngine `target`'s ready pod."""
    from kaito.cluster.local import runner

    if target.startswith(("http://", "https://")):
        return target.rstrip("/")
    cluster, paths = open_target(None, None, home)
    try:
        down = control_plane_down(paths)
        if down:
            raise CliError(down)
        await get_object(cluster, RAGENGINE_KIND, target, namespace)
        endpoint = runner.find_local_endpoint(await list_kind_pods(cluster, RAGENGINE_KIND, target, namespace))
    finally:
        await cluster.close()
    if endpoint is None:
        raise CliError(f"ragengine {target} has no ready service yet (see `kaito describe ragengine {target}`)")
    return endpoint


def _detail(resp) -> str:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        detail = None
    return str(detail if detail is not None else resp.text[:300])


async def run_index(target: str, files: list[str], index: str, namespace: str, home) -> int:
    import httpx

    collected = collect_documents(files)
    if collected.problems:
        for line in collected.problems:
            typer.echo(f"kaito rag index: {line}", err=True)
        typer.echo(f"kaito rag index: nothing was indexed ({len(collected.problems)} file(s) cannot be)", err=True)
        return 1
    if collected.skipped:
        typer.echo(f"kaito rag index: {collected.skipped} file(s) in the directories have no text, Markdown or "
                   "code extension and were left out", err=True)
    url = await resolve_service(target, namespace, home)
    batches = plan_batches(collected.documents)
    total = len(collected.documents)
    progress = _Progress(total, f"indexing {total} file(s) into {index}")
    done = 0
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        try:
            for batch in batches:
                resp = await client.post("/index", json={"index_name": index, "documents": batch})
                if resp.status_code != 200:
                    first, last = batch[0]["metadata"]["source"], batch[-1]["metadata"]["source"]
                    where = first if first == last else f"{first} … {last}"
                    raise CliError(f"{where}: the RAG service answered {resp.status_code}: {_detail(resp)} "
                                   f"({done} of {total} file(s) were indexed before)")
                done += len(batch)
                progress.advance(len(batch))
            listed = await client.get(f"/indexes/{index}/documents", params={"limit": 1})
        except httpx.HTTPError as exc:
            raise CliError(f"RAG service at {url} is not reachable: {exc or type(exc).__name__}") from None
        finally:
            progress.close()
    held = listed.json().get("total_items") if listed.status_code == 200 else None
    typer.echo(f"indexed {total} file(s) into index {index}" + (f" ({held} documents in it)" if held else ""))
    return 0


class _Progress:
    """A progress bar on a terminal, a line per step in a pipe (stderr either way)."""

    def __init__(self, total: int, description: str) -> None:
        self.total, self.done = total, 0
        self._bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task(description, total=total)
            self._bar.start()
        else:
            typer.echo(f"kaito rag index: {description}", err=True)

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)
        else:
            typer.echo(f"kaito rag index: {self.done}/{self.total} file(s) indexed", err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


async def run_ask(target: str, question: str, index: str | None, max_tokens: int, output: str, namespace: str,
                  home) -> int:
    import httpx

    if not question.strip():
        raise CliError("the question is empty")
    url = await resolve_service(target, namespace, home)
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        try:
            if index is None:
                indexes = (await client.get("/indexes")).json()
                if not indexes:
                    raise CliError(f"{target} has no index yet: index files first with `kaito rag index {target} FILES`")
                if len(indexes) > 1:
                    raise CliError(f"{target} has several indexes ({', '.join(indexes)}): choose one with --index")
                index = indexes[0]
            body = {"index_name": index, "messages": [{"role": "user", "content": question}],
                    "max_tokens": max_tokens}
            resp = await client.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise CliError(f"RAG service at {url} is not reachable: {exc or type(exc).__name__}") from None
    if resp.status_code != 200:
        raise CliError(f"the RAG service answered {resp.status_code}: {_detail(resp)}")
    answer = resp.json()
    if output == "json":
        typer.echo(json.dumps(answer, indent=2))
        return 0
    typer.echo((answer.get("choices") or [{}])[0].get("message", {}).get("content", ""))
    sources = answer.get("source_nodes") or []
    typer.echo("\nSources:" if sources else "\nSources: none (the answer used no indexed text)")
    for rank, node in enumerate(sources, 1):
        meta = node.get("metadata") or {}
        snippet = " ".join(str(node.get("text") or "").split())[:100]
        typer.echo(f"  {rank}. {meta.get('source') or node.get('doc_id')} (score {float(node.get('score') or 0):.3f}): "
                   f"{snippet}")
    return 0


def register(app: typer.Typer) -> None:
    rag = typer.Typer(name="rag", help="The RAG service: index documents, retrieve, chat with context.",
                      no_args_is_help=True)

    @rag.command(
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )
    def serve(ctx: typer.Context) -> None:
        """Run the RAG service (KAITO's RAGEngine API; `kaito rag serve --help` for the flags)."""
        from kaito.runtime.rag.__main__ import main

        raise typer.Exit(main(list(ctx.args)))

    @rag.command("index")
    def index_files(
        target: str = typer.Argument(..., help="a RAGEngine on the local cluster, or a RAG service URL"),
        files: list[str] = typer.Argument(..., help="files and directories (text, Markdown, code)"),
        index: str = typer.Option("default", "--index", "-i", help="the index to add them to"),
        namespace: str = NamespaceOption, home: Path = HomeOption,
    ) -> None:
        """Index files into a RAGEngine (code split by syntax, Markdown by headings), with progress."""
        run_async(run_index, target, files, index, namespace, home)

    @rag.command("ask")
    def ask(
        target: str = typer.Argument(..., help="a RAGEngine on the local cluster, or a RAG service URL"),
        question: str = typer.Argument(...),
        index: str = typer.Option(None, "--index", "-i", help="the index to answer from (default: the only one)"),
        max_tokens: int = typer.Option(256, "--max-tokens"),
        output: str = typer.Option("text", "-o", "--output", help="text or json"),
        namespace: str = NamespaceOption, home: Path = HomeOption,
    ) -> None:
        """Ask a question: the answer through the RAGEngine's model, and the sources it used."""
        if output not in ("text", "json"):
            typer.echo(f"kaito rag ask: unknown output format {output!r} (text or json)", err=True)
            raise typer.Exit(2)
        run_async(run_ask, target, question, index, max_tokens, output, namespace, home)

    app.add_typer(rag)
