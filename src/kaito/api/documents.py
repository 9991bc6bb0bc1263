"""Multi-document YAML text → Workspaces, with every problem tied to a file, line and field.

Pure: it takes text and a source name (a file path, or "<stdin>"), so the CLI and tests share it.
The YAML node tree is kept so that a field path found later (by validation) can be mapped back to
the line the user wrote it on. Each Workspace of any served version becomes a hub (`Document.hub`,
through `kaito.api.conversion`), with the version it was written in beside it; InferenceSets and
RAGEngines of either served version become their own hub types (`kaito.api.kinds`).
A key given twice in one mapping is an error at its second line, as Kubernetes refuses it (YAML
parsers would silently keep the last value). Parsing uses libyaml's C parser when PyYAML has it
(about ten times faster than the pure-Python one).
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator
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
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


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
    """One YAML document of a file and what became of it.

    Its node tree (for the line of a field) is not kept: for 20,000 documents it was most of the
    memory. `span` says where the document is in `text` (start, end, first line), and the tree is
    composed again from that slice the first time a problem needs a line."""

    source: str
    index: int
    node: yaml.Node | None
    data: Any = None
    hub: Any = None  # the object of any version read, as its kind's hub type (hub.Workspace for Workspaces)
    api_version: str | None = None  # the served version it was written in
    problems: list[Problem] = field(default_factory=list)
    text: str | None = field(default=None, repr=False)
    span: tuple[int, int, int] | None = None  # (start, end, first line - 1) of the document in `text`

    def _tree(self) -> tuple[yaml.Node | None, int]:
        """The node tree and the lines before it in the file (0 when `node` was given whole)."""
        lines_before = self.span[2] if self.span is not None else 0
        if self.node is None and self.text is not None and self.span is not None:
            start, end, _ = self.span
            try:
                self.node = yaml.compose(self.text[start:end], Loader=_LOADER)
            except yaml.YAMLError:
                return None, 0
            self.text = None  # composed once; the slice is no longer needed
        return self.node, lines_before

    def line_of(self, path: str) -> int | None:
        """Line of the deepest YAML node along `path` (e.g. `inference.adapters[0].source.name`)."""
        node, lines_before = self._tree()
        if node is None:
            return None
        parts: list[str | int] = [
            m.group(1) if m.group(1) is not None else int(m.group(2)) if m.group(2) is not None else m.group(3)
            for m in _PATH_PART.finditer(path)
        ]
        return line_of_path(node, parts) + lines_before

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


MAX_EXPANDED_NODES = 1_000_000  # YAML nodes of one document once aliases are expanded


def find_duplicate_keys(node: yaml.Node) -> list[tuple[int, FieldError]]:
    """(line, error) for every key given twice in one mapping of the tree under `node`, and for a
    document whose aliases expand past `MAX_EXPANDED_NODES` nodes (the "billion laughs": a few
    lines that every later step, JSON included, would expand). Each node is visited once."""
    found: list[tuple[int, FieldError]] = []
    seen: set[int] = set()
    aliased = False
    stack: list[tuple[yaml.Node, str]] = [(node, "")]
    while stack:
        current, path = stack.pop()
        if id(current) in seen:
            aliased = True  # an alias of a node already visited
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in current.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    stack.append((value, path))
                    continue
                line = key.start_mark.line + 1
                here = f"{path}.{key.value}" if path else str(key.value)
                if (key.tag, key.value) in first:
                    found.append((line, FieldError(here, f"duplicate key {key.value!r} (first given at line "
                                                         f"{first[(key.tag, key.value)]}): a key may appear once")))
                else:
                    first[(key.tag, key.value)] = line
                stack.append((value, here))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(current.value))
    if aliased and _expanded_size(node) > MAX_EXPANDED_NODES:
        found.append((node.start_mark.line + 1, FieldError(
            "", f"the document's aliases expand to more than {MAX_EXPANDED_NODES} nodes")))
    return sorted(found, key=lambda f: f[0])


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _expanded_size(root: yaml.Node) -> int:
    """Nodes under `root` with every alias expanded (capped just past the bound; a recursive alias
    counts as past it), each distinct node sized once."""
    cap = MAX_EXPANDED_NODES + 1
    size: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in size:
            continue
        if children_done:
            visiting.discard(key)
            size[key] = min(1 + sum(size[id(c)] for c in _children(node)), cap)
            continue
        if key in visiting:
            return cap  # an alias inside its own anchor: endless once expanded
        visiting.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in visiting:
                return cap
            if id(child) not in size:
                stack.append((child, False))
    return size[id(root)]


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


def _parse_into(text: str, source: str, versions: tuple[str, ...], docs: list[Document],
                problems: list[Problem]) -> None:
    loader = _LOADER(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            if data is None:
                continue
            span = (node.start_mark.index, node.end_mark.index, node.start_mark.line)
            doc = Document(source=source, index=len(docs), node=node, data=data)
            duplicates = find_duplicate_keys(node)
            if duplicates:  # the data holds only the last value: it is not what the user meant
                doc.problems.extend(Problem(source, line, err) for line, err in duplicates)
            else:
                _parse_one(doc, versions)
            doc.node, doc.text, doc.span = None, text, span  # composed again only if a line is asked for
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


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the block.

    Parsing keeps every document's node tree (lines for later messages): hundreds of thousands of
    live objects, which each automatic collection walks again. That made parsing 20,000 documents
    three times slower; none of these objects form cycles, so reference counting frees them anyway."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_documents(
    text: str, source: str, *, versions: tuple[str, ...] = SERVED_VERSIONS
) -> tuple[list[Document], list[Problem]]:
    """Parse every document of `text`; file-level problems (YAML syntax) come back separately.

    `versions`: the served versions to read (all of them unless told); others are reported.
    """
    docs: list[Document] = []
    problems: list[Problem] = []
    with paused_gc():
        _parse_into(text, source, versions, docs, problems)
    return docs, problems
