"""Multi-document YAML text → Workspaces, with every problem tied to a file, line and field.

Pure: it takes text and a source name (a file path, or "<stdin>"), so the CLI and tests share it.
The YAML node tree is kept so that a field path found later (by validation) can be mapped back to
the line the user wrote it on. Each Workspace of any served version becomes a hub (`Document.hub`,
through `kaito.api.conversion`), with the version it was written in beside it; InferenceSets and
RAGEngines of either served version become their own hub types (`kaito.api.kinds`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from kaito.api import conversion, kinds
from kaito.api.errors import FieldError, validation_errors

GROUP, KIND = conversion.GROUP, conversion.KIND
SERVED_VERSIONS = conversion.SERVED_VERSIONS

__all__ = ["SERVED_VERSIONS", "Document", "Problem", "parse_documents", "validation_errors"]

# A name, a list index, or a bracketed map key (`metadata.annotations[kaito.sh/runtime]`).
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[([^\]]+)\]")


@dataclass(frozen=True)
class Problem:
    """A FieldError placed in a file (line is 1-based, None when YAML gives none)."""

    source: str
    line: int | None
    error: FieldError

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.error.severity}: {self.error}"


@dataclass
class Document:
    """One YAML document of a file and what became of it."""

    source: str
    index: int
    node: yaml.Node | None
    data: Any = None
    hub: Any = None  # the object of any version read, as its kind's hub type (hub.Workspace for Workspaces)
    api_version: str | None = None  # the served version it was written in
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, path: str) -> int | None:
        """Line of the deepest YAML node along `path` (e.g. `inference.adapters[0].source.name`)."""
        if self.node is None:
            return None
        parts: list[str | int] = [
            m.group(1) if m.group(1) is not None else int(m.group(2)) if m.group(2) is not None else m.group(3)
            for m in _PATH_PART.finditer(path)
        ]
        return line_of_path(self.node, parts)

    def place(self, err: FieldError) -> Problem:
        return Problem(self.source, self.line_of(err.path), err)


def line_of_path(node: yaml.Node, parts: list[str | int]) -> int:
    """Follow `parts` down the node tree as far as it goes; the line of the last node reached."""
    line = node.start_mark.line + 1
    for part in parts:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    line = key.start_mark.line + 1
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _parse_one(doc: Document, versions: tuple[str, ...]) -> None:
    data = doc.data
    expected = " or ".join(versions)
    if not isinstance(data, dict):
        doc.problems.append(
            doc.place(FieldError("", f"document {doc.index + 1} is not a mapping (a YAML object)"))
        )
        return
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if api_version is None or kind is None:
        missing = "apiVersion" if api_version is None else "kind"
        doc.problems.append(
            doc.place(FieldError(missing, f"{missing} is required (expected {expected} {KIND})"))
        )
        return
    if kind in kinds.KINDS:
        _parse_kind(doc, data)
        return
    if kind in ("ConfigMap", "Secret") and api_version == "v1":
        return  # kept as data: a Workspace in the same files may name it (`tuning.config`, `inference.config`,
        # `presetOptions.modelAccessSecret`), and `kaito apply` writes it beside the Workspace
    if kind != KIND or not str(api_version).startswith(f"{GROUP}/"):
        doc.problems.append(
            doc.place(FieldError("kind", f"skipped {api_version} {kind}: only {', '.join(kinds.ADMITTED_KINDS)} are checked", "warning"))
        )
        return
    if api_version not in versions:
        doc.problems.append(
            doc.place(FieldError("apiVersion", f"unsupported version {api_version!r}: this command reads {expected}"))
        )
        return
    try:
        doc.hub, doc.api_version = conversion.parse_workspace(data)
    except conversion.ParseError as exc:
        doc.problems.extend(doc.place(err) for err in exc.errors)


def _parse_kind(doc: Document, data: dict[str, Any]) -> None:
    """An InferenceSet or a RAGEngine: its hub, or its parse problems placed in the file."""
    try:
        doc.hub, doc.api_version = kinds.parse_object(data)
    except conversion.ParseError as exc:
        doc.problems.extend(doc.place(err) for err in exc.errors)


def parse_documents(
    text: str, source: str, *, versions: tuple[str, ...] = SERVED_VERSIONS
) -> tuple[list[Document], list[Problem]]:
    """Parse every document of `text`; file-level problems (YAML syntax) come back separately.

    `versions`: the served versions to read (all of them unless told); others are reported.
    """
    docs: list[Document] = []
    problems: list[Problem] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            if data is None:
                continue
            doc = Document(source=source, index=len(docs), node=node, data=data)
            _parse_one(doc, versions)
            docs.append(doc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(source, line, FieldError("", f"YAML syntax error: {reason}")))
    except Exception as exc:  # e.g. recursion on pathological anchors; never a traceback
        problems.append(Problem(source, None, FieldError("", f"cannot read YAML: {exc}")))
    finally:
        loader.dispose()
    return docs, problems
