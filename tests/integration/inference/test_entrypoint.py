"""`python -m kaito.runtime.inference` as a process: the port opens first, the model loads behind it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tiny_model) -> dict[str, str]:
    return {**os.environ, **tiny_model.env(), "PYTHONPATH": os.pathsep.join(sys.path)}


def test_module_serves_kaito_flags_and_stops_cleanly(tiny_model):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kaito.runtime.inference", "--pipeline", "text-generation",
         "--pretrained_model_name_or_path", tiny_model.repo_id, "--torch_dtype", "float32",
         "--allow_remote_files", "False", "--host", "127.0.0.1", "--port", str(port), "--adapters-dir", ""],
        env=_env(tiny_model), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        reply = httpx.post(f"http://127.0.0.1:{port}/chat", timeout=30,
                           json={"prompt": "hi", "generate_kwargs": {"max_new_tokens": 3}})
        assert reply.status_code == 200 and reply.json()["Result"].startswith("hi")
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert proc.returncode in (0, -15)
    assert "Model loaded successfully" in output
    assert "Finished server process" in output


def test_unloadable_model_exits_non_zero_with_the_reason(tmp_path, capsys):
    from kaito.runtime.inference.__main__ import serve
    from kaito.runtime.inference.settings import build_settings

    settings = build_settings(["--model", str(tmp_path / "missing"), "--host", "127.0.0.1", "--port", "0"], env={})
    assert serve(settings) == 1
    err = capsys.readouterr().err
    assert "model load failed" in err and "missing" in err
