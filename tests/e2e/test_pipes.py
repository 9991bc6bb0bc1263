"""The `kaito` command in shell pipelines, as kubectl users use it.

`-f -` reads standard input once (`cat ws.yaml | kaito apply -f -` validates and applies the same
text); tables written to a pipe are kubectl's plain columns with full values and no box characters.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from tests.e2e.conftest import workspace_yaml

BOX = set("─━│┃┌┐└┘├┤┬┴┼╇╈╋═║╭╮╯╰…")


def _pipe(kaito, command: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`kaito COMMAND | cat` through a real shell pipe (stdout is a pipe, as for `| less`)."""
    cli = f"{shlex.quote(sys.executable)} -m kaito.cli.main"
    return subprocess.run(["bash", "-o", "pipefail", "-c", f"{cli} {command} | cat"], input=stdin, env=kaito.env,
                          capture_output=True, text=True, timeout=120)


def test_stdin_and_pipes(local_cluster, tiny_model):
    kaito = local_cluster
    name = "a-workspace-with-a-rather-long-name"
    text = workspace_yaml(name, tiny_model.repo_id)

    validated = _pipe(kaito, "validate -f -", text)
    assert validated.returncode == 0 and "1 workspace(s) in 1 file(s): valid" in validated.stdout, validated.stderr

    rendered = _pipe(kaito, "render -f -", text)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Deployment" in rendered.stdout and f"name: {name}" in rendered.stdout

    applied = _pipe(kaito, "apply -f -", text)  # read once: validated, then written
    assert applied.returncode == 0, applied.stderr
    assert f"workspace.kaito.sh/{name} created" in applied.stdout
    assert "nothing to apply" not in applied.stderr
    stored = kaito.workspace(name)
    assert stored["inference"]["preset"]["name"] == tiny_model.repo_id

    listed = _pipe(kaito, "get workspaces")
    assert listed.returncode == 0, listed.stderr
    assert not BOX & set(listed.stdout)
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["NAME", "INSTANCE", "RESOURCEREADY", "INFERENCEREADY", "JOBSTARTED",
                              "WORKSPACESUCCEEDED", "AGE"]
    assert rows[0].split()[:2] == [name, "Standard_NC6s_v3"]  # full values, never cut to "a-work…"

    wide = _pipe(kaito, "get workspaces -o wide")
    assert wide.stdout.splitlines()[0].split()[-4:] == ["PRESET", "ENGINE", "NODES", "ENDPOINT"]
    assert tiny_model.repo_id in wide.stdout and not BOX & set(wide.stdout)
    assert _pipe(kaito, "get workspaces -o name").stdout == f"workspace.kaito.sh/{name}\n"
    assert json.loads(_pipe(kaito, "get workspaces -o json").stdout)["items"][0]["metadata"]["name"] == name
    assert f"name: {name}" in _pipe(kaito, f"get workspace {name} -o yaml").stdout

    models = _pipe(kaito, "models")
    assert models.returncode == 0 and not BOX & set(models.stdout)
    assert models.stdout.splitlines()[0].split()[0] == "NAME"
    assert any(line.split()[0] == "phi-3-mini-128k-instruct" for line in models.stdout.splitlines()[1:])
