"""Hostile YAML through `parse_documents` and `kaito validate`: a key given twice is an error at its
line (Kubernetes refuses it; YAML parsers keep the last value silently), aliases that expand past a
bound are refused before anything expands them, and lines stay right although node trees are
composed again only for documents with problems."""

from __future__ import annotations

from typer.testing import CliRunner

from kaito.api.documents import MAX_EXPANDED_NODES, parse_documents
from kaito.cli.main import app

WS = """apiVersion: kaito.sh/v1alpha1
kind: Workspace
metadata:
  name: {name}
resource:
  instanceType: Standard_NC12s_v3
  labelSelector:
    matchLabels:
      apps: {name}
inference:
  preset:
    name: falcon-7b
"""


def _errors(text: str):
    docs, problems = parse_documents(text, "f.yaml")
    return [str(p) for d in docs for p in d.problems if p.error.severity == "error"] + [str(p) for p in problems]


def test_a_key_given_twice_is_an_error_at_its_second_line():
    text = WS.format(name="a").replace("  instanceType: Standard_NC12s_v3\n",
                                        "  count: 1\n  instanceType: Standard_NC12s_v3\n  count: 100000\n")
    assert _errors(text) == ["f.yaml:8: error: resource.count: duplicate key 'count' (first given at line 6): "
                             "a key may appear once"]
    flow = "apiVersion: kaito.sh/v1alpha1\nkind: Workspace\nmetadata: {name: a, name: b}\n"
    assert _errors(flow) == ["f.yaml:3: error: metadata.name: duplicate key 'name' (first given at line 3): "
                             "a key may appear once"]
    nested = WS.format(name="a") + "  adapters:\n    - source: {name: x, name: y}\n"
    assert "inference.adapters[0].source.name: duplicate key" in _errors(nested)[0]
    # The same key in different mappings, and YAML merge keys, are fine.
    merged = "x: &base {a: 1}\ny:\n  <<: *base\n  b: 2\nz: {a: 1}\n"
    docs, _ = parse_documents(merged, "m.yaml")
    assert not [p for p in docs[0].problems if "duplicate" in p.error.message]


def test_aliases_that_expand_past_the_bound_are_refused():
    # The "billion laughs", inside the one free-form field (the pod template): a few lines of YAML
    # that every later step (the JSON of the store, of the API server) would expand to 10^9 strings.
    lines = ["apiVersion: kaito.sh/v1beta1", "kind: Workspace", "metadata: {name: lol}", "inference:",
             "  template:", "    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    lines.append("    spec: *a8")
    assert _errors("\n".join(lines) + "\n") == [
        f"f.yaml:1: error: the document's aliases expand to more than {MAX_EXPANDED_NODES} nodes"]
    recursive = "apiVersion: kaito.sh/v1beta1\nkind: Workspace\nmetadata: {name: r}\ninference: &r {template: *r}\n"
    assert "aliases expand to more than" in _errors(recursive)[0]
    # A few ordinary aliases are fine.
    small = WS.format(name="a").replace("      apps: a\n", "      apps: &n a\n      team: *n\n")
    assert _errors(small) == []


def test_lines_are_right_in_any_document_of_a_stream():
    bad = WS.format(name="b").replace("falcon-7b", "no-such-model")
    text = "kind: ConfigMap\napiVersion: v1\nmetadata: {name: c}\n---\n# a comment\n\n" + WS.format(name="a") + \
        "---\n" + bad
    docs, _ = parse_documents(text, "s.yaml")
    assert [d.node for d in docs] == [None, None, None]  # not kept: composed again only when asked
    assert docs[2].line_of("inference.preset.name") == 6 + 12 + 1 + 12
    assert docs[1].line_of("resource.labelSelector.matchLabels.apps") == 6 + 9
    assert docs[2].line_of("") == 6 + 12 + 2


def test_kaito_validate_refuses_duplicate_keys_with_file_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(WS.format(name="a") + "---\n" + WS.format(name="b").replace("kind: Workspace\n",
                                                                                   "kind: Workspace\nkind: Pod\n"))
    result = CliRunner().invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 1
    assert f"{path}:16: error: kind: duplicate key 'kind' (first given at line 15)" in result.output
