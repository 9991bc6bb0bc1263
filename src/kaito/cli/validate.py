"""`kaito validate -f FILE…`: KAITO's admission answer for Workspace, InferenceSet and RAGEngine YAML,
without a cluster.

Thin: reading files is here; parsing and the rules are `kaito.api` (`admit`: either served version,
with the ConfigMaps found in the given files), model facts come from the catalog's one factory.
Every problem is printed as `file:line: severity: field: message`; any error exits 1; no traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from kaito.cli.common import admission_inputs, admit_document, build_facts, expand_sources


def _kind(doc) -> str | None:
    return doc.data.get("kind") if isinstance(doc.data, dict) else None


def _group(doc) -> str:
    api_version = doc.data.get("apiVersion") if isinstance(doc.data, dict) else None
    return str(api_version).split("/")[0] if api_version and "/" in str(api_version) else ""


def _summary_order(item: tuple[str, int]) -> tuple[bool, str]:
    return (item[0] != "Workspace", item[0])  # Workspaces first, then the other kinds by name


def _without_workspace(by_source: dict) -> list:
    """An error for each file that holds no Workspace, so an empty or mistyped file fails CI.

    A ConfigMap-only file is fine beside a Workspace (it may be that Workspace's `tuning.config`);
    a file that already has an error (YAML syntax, a bad Workspace) is not told twice.
    """
    from kaito.api.admission import ADMITTED_KINDS
    from kaito.api.documents import Problem
    from kaito.api.errors import FieldError

    any_workspace = any(_kind(d) in ADMITTED_KINDS for docs, _ in by_source.values() for d in docs)
    out = []
    for source, (docs, file_problems) in by_source.items():
        kinds = [str(_kind(d)) for d in docs]
        own = [*file_problems, *(p for d in docs for p in d.problems)]
        if set(kinds) & set(ADMITTED_KINDS) or any(p.error.severity == "error" for p in own):
            continue
        if any_workspace and set(kinds) == {"ConfigMap"}:
            continue
        why = f"found {', '.join(dict.fromkeys(kinds))}" if kinds else "the file is empty"
        # Other Kubernetes objects beside Workspaces are normal in a GitOps folder: say they were
        # skipped. Alone, or under kaito.sh (a mistyped kind), they mean the file is not what was meant.
        foreign = bool(docs) and not any(_group(d) == "kaito.sh" for d in docs)
        severity = "warning" if any_workspace and foreign else "error"
        message = f"no Workspace found ({why})" + (": skipped" if severity == "warning" else "")
        out.append(Problem(source, None, FieldError("", message, severity)))
    return out


@dataclass(frozen=True, kw_only=True)
class Checked:
    """What `check_sources` found: the exit code and the parsed documents, in input order.

    `kaito apply` writes these very documents, so what was validated is exactly what is applied
    (standard input in particular is read once, before validation)."""

    code: int
    documents: list = field(default_factory=list)


def run_validate(names: list[str], quiet: bool = False, cloud: str = "azure", allow_local_urls: bool = False) -> int:
    """Validate every Workspace in `names`; print problems; return the exit code."""
    inputs, unreadable = expand_sources(names)
    return check_sources(inputs, unreadable, quiet=quiet, cloud=cloud, allow_local_urls=allow_local_urls).code


def check_sources(inputs: list[tuple[str, str | None]], unreadable: list[str], *, quiet: bool = False,
                  cloud: str = "azure", allow_local_urls: bool = False) -> Checked:
    """Validate every Workspace in the texts already read (`expand_sources`); print problems.

    `allow_local_urls`: the Workspaces go to the local cluster, where URLs on this machine or its
    network are the user's own (strict otherwise, as the admission webhook is)."""
    from kaito.api.documents import parse_documents

    for line in unreadable:
        typer.echo(f"{line}", err=True)
    try:
        facts = build_facts(cloud)
    except ValueError as exc:  # an unknown --cloud
        typer.echo(f"kaito validate: {exc}", err=True)
        return Checked(code=2)
    documents, problems, by_source = [], [], {}
    for source, text in inputs:
        docs, file_problems = parse_documents(text or "", source)
        documents += docs
        problems += file_problems
        by_source[source] = (docs, file_problems)
    options, reads = admission_inputs(documents, allow_local_urls)
    checked: dict[str, int] = {"Workspace": 0}
    for doc in documents:
        problems += doc.problems
        if doc.hub is None:
            continue
        checked[_kind(doc)] = checked.get(_kind(doc), 0) + 1
        verdict = admit_document(doc, facts, options, reads)  # any admitted kind, one entry point
        problems += [doc.place(e) for e in verdict.problems]
    problems += _without_workspace(by_source)
    n_errors = sum(p.error.severity == "error" for p in problems) + len(unreadable)
    for problem in problems:
        if quiet and problem.error.severity == "warning":
            continue
        typer.echo(str(problem))
    bad_sources = {p.source for p in problems if p.error.severity == "error"}
    verdict = "invalid" if n_errors else "valid"
    typer.echo(
        f"{', '.join(f'{n} {kind.lower()}(s)' for kind, n in sorted(checked.items(), key=_summary_order))} "
        f"in {len(inputs)} file(s): {verdict}"
        + (f" ({n_errors} error(s) in {len(bad_sources) + len(unreadable)} file(s))" if n_errors else ""),
        err=bool(n_errors),
    )
    if not inputs and not unreadable:
        return Checked(code=1, documents=documents)
    return Checked(code=1 if n_errors else 0, documents=documents)


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        filename: list[str] = typer.Option(
            [], "-f", "--filename", help="YAML file, directory, or - for stdin (repeatable)"
        ),
        more: list[str] = typer.Argument(None, help="more files or directories (so `-f examples/*.yaml` works)"),
        quiet: bool = typer.Option(False, "-q", "--quiet", help="show errors only, not warnings"),
        cloud: str = typer.Option("azure", "--cloud", help="SKU table for instance types: azure, aws or arc"),
        allow_local_urls: bool = typer.Option(
            False, "--allow-local-urls",
            help="admit tuning input URLs on localhost or private addresses, as the local cluster does "
            "(a shared cluster refuses them)",
        ),
    ) -> None:
        """Check Workspace YAML against KAITO's admission rules (exit 1 on any error)."""
        names = [*filename, *(more or [])]
        if not names:
            typer.echo("kaito validate: give at least one file with -f FILE (or - for stdin)", err=True)
            raise typer.Exit(2)
        try:
            code = run_validate(names, quiet, cloud, allow_local_urls)
        except Exception as exc:  # the rules never raise; this guards the promise of no traceback
            typer.echo(f"kaito validate: internal error: {exc}", err=True)
            code = 2
        raise typer.Exit(code)
