"""The script that pushes a tuned adapter as an image (`tuning.build_push_script`), run for real in
a POSIX shell with a stand-in for crane: what it packs, and when it refuses or gives up."""

from __future__ import annotations

import pytest

from kaito.manifests import tuning


def _run_push_script(tmp_path, *, completed: bool, crane_fails: bool = False):
    import shutil
    import subprocess
    import tarfile

    if shutil.which("sh") is None:
        pytest.skip("no POSIX shell")
    out = tmp_path / "results"
    (out / "checkpoint-1").mkdir(parents=True)
    (out / "adapter_config.json").write_text("{}")
    (out / "adapter_model.safetensors").write_bytes(b"weights")
    (out / "checkpoint-1" / "optimizer.pt").write_bytes(b"big")
    if completed:
        (out / tuning.COMPLETION_MARKER).write_text("done")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A stand-in for crane that records its arguments and the layer it was given.
    (bin_dir / "crane").write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {tmp_path}/crane-args\n'
        f'cp "$5" {tmp_path}/layer.tar\n'
        + ("exit 1\n" if crane_fails else "exit 0\n")
    )
    (bin_dir / "crane").chmod(0o755)
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")  # no real 30 s waits in a unit test
    (bin_dir / "sleep").chmod(0o755)
    script = tuning.build_push_script(str(out), "r.io/a:1", work_dir=str(tmp_path / "work"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    layer = tmp_path / "layer.tar"
    if not layer.exists():
        return proc, None
    with tarfile.open(layer) as tar:
        return proc, sorted(tar.getnames())


def test_push_script_packs_the_adapter_under_data_and_pushes_it(tmp_path) -> None:
    proc, names = _run_push_script(tmp_path, completed=True)
    assert proc.returncode == 0, proc.stderr
    assert names == ["data", "data/adapter_config.json", "data/adapter_model.safetensors", f"data/{tuning.COMPLETION_MARKER}"]
    args = (tmp_path / "crane-args").read_text().split()
    assert args[:3] == ["append", "--base", tuning.PUSH_BASE_IMAGE] and args[-2:] == ["--new_tag", "r.io/a:1"]


def test_push_script_refuses_an_incomplete_adapter(tmp_path) -> None:
    proc, names = _run_push_script(tmp_path, completed=False)
    assert proc.returncode == 1 and "no completed adapter" in proc.stderr and names is None


def test_push_script_gives_up_after_retries(tmp_path) -> None:
    proc, _ = _run_push_script(tmp_path, completed=True, crane_fails=True)
    assert proc.returncode == 1 and proc.stderr.count("push attempt") == 5
