"""e2e: a hostile but fair user against the local cluster through `kaito apply`.

- `resource.count: 1000000` is refused by its bound, and nothing is stored;
- a Workspace that exists cannot change its immutable fields (instanceType, count, labelSelector,
  preset): refused with KAITO's "field is immutable" at the file's line, nothing written;
- a named pipe whose content changes between two reads cannot bypass validation: `kaito apply`
  reads it once, and what it validated is what it writes.
"""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

from tests.e2e.conftest import workspace_yaml


def _spec(ws: dict) -> dict:
    return {k: ws.get(k) for k in ("resource", "inference", "tuning")}


def test_count_bomb_and_immutable_fields_are_refused(local_cluster, tiny_model):
    kaito = local_cluster
    bomb = kaito.write("bomb.yaml", workspace_yaml("bomb", tiny_model.repo_id).replace(
        "  instanceType: Standard_NC6s_v3\n", "  instanceType: Standard_NC6s_v3\n  count: 1000000\n"))
    result = kaito("apply", "-f", bomb)
    assert result.returncode == 1
    assert "bomb.yaml:7: error: resource.count: count 1000000 is more nodes" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr
    assert kaito("get", "workspaces", "-o", "name", check=True).stdout == ""

    base = workspace_yaml("tiny", tiny_model.repo_id)
    kaito("apply", "-f", kaito.write("tiny.yaml", base), check=True)
    stored = kaito.workspace("tiny")
    changes = {
        "resource.instanceType": base.replace("Standard_NC6s_v3", "Standard_NC12s_v3"),
        "resource.count": base.replace("  instanceType:", "  count: 2\n  instanceType:"),
        "resource.labelSelector": base.replace("apps: tiny", "apps: other"),
        "inference.preset": base.replace(f"name: {tiny_model.repo_id}", "name: falcon-7b"),
    }
    for field, text in changes.items():
        result = kaito("apply", "-f", kaito.write("changed.yaml", text))
        assert result.returncode == 1, (field, result.stdout, result.stderr)
        assert f"error: {field}: field is immutable" in result.stdout, (field, result.stdout)
        assert "changed.yaml:" in result.stdout and "nothing was applied" in result.stderr
        assert "Traceback" not in result.stderr
    after = kaito.workspace("tiny")
    assert _spec(after) == _spec(stored)
    assert after["metadata"]["generation"] == stored["metadata"]["generation"]


def _serve_once_then_change(path: str, valid: str, invalid: str, done: threading.Event) -> None:
    """The first reader of the named pipe at `path` gets `valid`; as soon as it has opened it, the
    path is replaced by a file holding `invalid`, so any later read of the "same" input sees that."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO until a reader has it open
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or done.is_set():
                return
            time.sleep(0.01)
    changed = path + ".next"
    with open(changed, "w") as f:
        f.write(invalid)
    os.replace(changed, path)
    os.set_blocking(fd, True)
    try:
        os.write(fd, valid.encode())
    except BrokenPipeError:
        pass
    finally:
        os.close(fd)


@pytest.mark.parametrize("via", ["named pipe", "stdin"])
def test_a_changing_pipe_cannot_bypass_validation(local_cluster, tiny_model, via):
    kaito = local_cluster
    valid = workspace_yaml("piped", tiny_model.repo_id)
    invalid = valid.replace("  instanceType: Standard_NC6s_v3\n", "  instanceType: Standard_NC6s_v3\n  count: 1000000\n")
    if via == "stdin":
        # stdin read twice would see the end of input the second time: the text is validated once and
        # that very text applied; given twice (`-f - -f -`) it is still one input.
        result = kaito("apply", "-f", "-", "-f", "-", input=valid)
        assert result.returncode == 0, result.stderr
    else:
        fifo = str(kaito.home.parent / "changing.yaml")
        os.mkfifo(fifo)
        done = threading.Event()
        writer = threading.Thread(target=_serve_once_then_change, args=(fifo, valid, invalid, done), daemon=True)
        writer.start()
        try:
            result = kaito("apply", "-f", fifo)
        finally:
            done.set()
            writer.join(timeout=10)
        assert result.returncode == 0, result.stderr
    assert "workspace.kaito.sh/piped created" in result.stdout
    assert kaito.workspace("piped")["resource"].get("count", 1) == 1  # what was validated is what was written
