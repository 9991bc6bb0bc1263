"""`kaito render -f FILE`: every object the controller would create for the Workspaces in FILE.

Thin: parsing and admission are `kaito.api` (`admit`, either served version, the catalog's one
facts factory, ConfigMaps from the given files, exactly as `kaito validate`), the objects are
`kaito.manifests`, built from the admitted hub Workspace. Output is multi-document YAML on stdout,
written only when every Workspace in the input is valid, so a pipeline (`kaito render -f ws.yaml | kubectl apply -f -`) never receives half a rendering.
"""

from __future__ import annotations

import typer

from kaito.cli.common import admission_inputs, admit_document, build_facts, expand_sources

HEADER = (
    "# Rendered by `kaito render`: what the controller creates for this Workspace, with NodeClaims\n"
    "# for the whole resource.count. Owner references carry a placeholder uid until the Workspace exists.\n"
)


def run_render(
    names: list[str], *, registry: str | None, tag: str | None, cloud: str, byo: bool
) -> tuple[int, str, list[str]]:
    """(exit code, YAML to print, messages for stderr)."""
    from kaito.api.documents import parse_documents
    from kaito.api.validation import compute_runtime
    from kaito.manifests import images, workspace

    settings = workspace.RenderSettings(
        images=images.ImageSettings(registry=registry or images.DEFAULT_REGISTRY, tag=tag),
        cloud=cloud,  # type: ignore[arg-type]
        provision_nodes=not byo,
    )
    facts = build_facts(cloud)
    messages: list[str] = []
    documents = []
    inputs, unreadable = expand_sources(names)
    messages += unreadable
    for source, text in inputs:
        docs, problems = parse_documents(text or "", source)
        messages += [str(p) for p in problems if p.error.severity == "error"]
        documents += docs
    # ConfigMaps of every given file count, as for `kaito validate`.
    options, reads = admission_inputs(documents, provision_nodes=not byo)
    objects: list[dict] = []
    found = 0
    for doc in documents:
        messages += [str(p) for p in doc.problems if p.error.severity == "error"]
        if doc.hub is None:
            continue
        found += 1
        verdict = admit_document(doc, facts, options, reads)
        messages += [str(doc.place(e)) for e in verdict.errors]
        if not verdict.allowed or verdict.workspace is None:
            continue
        engine = compute_runtime(verdict.workspace, facts, options) if verdict.workspace.inference else None
        try:
            objects += workspace.build_workspace_objects(verdict.workspace, settings, engine=engine)
        except workspace.ManifestError as exc:
            messages.append(str(doc.place(exc.error)))
    if not messages and not found:
        messages.append("no kaito.sh Workspace (v1alpha1 or v1beta1) in the input")
    if messages:
        return 1, "", messages
    return 0, HEADER + workspace.dump_yaml(objects), []


def register(app: typer.Typer) -> None:
    @app.command("render")
    def render(
        filename: list[str] = typer.Option(..., "-f", "--filename", help="Workspace YAML file, directory, or - for stdin"),
        registry: str = typer.Option(None, "--registry", help="registry of the kaito-runtime image"),
        tag: str = typer.Option(None, "--tag", help="kaito-runtime image tag (default: the preset's)"),
        cloud: str = typer.Option("azure", "--cloud", help="azure or aws: SKU table and NodeClass"),
        byo: bool = typer.Option(False, "--byo", help="bring-your-own nodes: no NodeClaims"),
    ) -> None:
        """Print, as multi-document YAML, every object the controller would create (exit 1 on bad input)."""
        if cloud not in ("azure", "aws"):
            typer.echo(f"kaito render: --cloud must be azure or aws, not {cloud!r}", err=True)
            raise typer.Exit(1)
        try:
            code, text, messages = run_render(filename, registry=registry, tag=tag, cloud=cloud, byo=byo)
        except Exception as exc:  # builders never raise on valid input; this keeps the no-traceback promise
            typer.echo(f"kaito render: internal error: {exc}", err=True)
            raise typer.Exit(2) from None
        for line in messages:
            typer.echo(line, err=True)
        if text:
            typer.echo(text, nl=False)
        raise typer.Exit(code)
