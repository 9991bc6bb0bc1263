"""Which Python runs the local cluster's vLLM pods, and how every process learns whether there is one.

vLLM lives in its own virtual environment (its CPU build pins torch and half the ML stack), so the
control plane of `kaito up` may run from one interpreter and its vLLM pods from another. The choice,
in order (first found wins; nothing is guessed from the folder layout, so what a machine happens to
have lying around never changes what a test or a user gets):
1. `kaito up --vllm-python PATH`;
2. the environment variable `KAITO_VLLM_PYTHON=PATH`;
3. the control plane's own interpreter, when vLLM is installed in it;
4. none: the local cluster cannot run vLLM pods. v1beta1 Workspaces that name no runtime run on
   transformers there (and say so); one that asks for vLLM gets a condition saying how to install it.
A given interpreter is checked before anything starts: it must exist and import both vLLM and
kaito's runtime. The control plane records its choice in the ConfigMap `kaito-local-cluster` of its
release namespace, so `kaito apply` (admission in another process), `kaito get -o wide` and
`kaito describe` answer as its controller does.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaito.cluster import errors, protocol

ENV_VLLM_PYTHON = "KAITO_VLLM_PYTHON"
CONFIGMAP_NAME = "kaito-local-cluster"
NAMESPACE = "kaito-workspace"  # the local control plane's release namespace (as the chart's)
_KEY_PYTHON = "vllm-python"
_KEY_SOURCE = "vllm-python-source"
_CHECK = ("import importlib.util as u, sys\n"
          "sys.exit(3 if u.find_spec('vllm') is None else 4 if u.find_spec('kaito.runtime.inference') is None else 0)")


class VllmPythonError(ValueError):
    """The interpreter named for vLLM pods cannot run them; the message says why and what to do."""


@dataclass(frozen=True, kw_only=True)
class VllmRuntime:
    python: str | None  # the interpreter of vLLM pods; None: vLLM cannot run here
    source: str  # how it was chosen, in words (`--vllm-python`, KAITO_VLLM_PYTHON, ...)

    @property
    def available(self) -> bool:
        return self.python is not None

    def describe(self) -> str:
        return f"vLLM pods run {self.python} ({self.source})" if self.python else f"no vLLM ({self.source})"


NO_VLLM = VllmRuntime(python=None, source="no --vllm-python, no KAITO_VLLM_PYTHON, and no vLLM in the control "
                                          "plane's interpreter")


def check_interpreter(path: str, what: str) -> str:
    """`path` made absolute when it can run vLLM pods; `VllmPythonError` naming `what` otherwise."""
    python = Path(path).expanduser()
    if not python.is_file():
        raise VllmPythonError(f"{what} {path}: no such file (a Python interpreter with vLLM installed, e.g. "
                              ".venv-vllm/bin/python made by ./scripts/setup-vllm)")
    python = python.absolute()  # a venv's python is a symlink: resolving it would leave the venv
    try:
        done = subprocess.run([str(python), "-c", _CHECK], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VllmPythonError(f"{what} {path}: cannot run it: {exc}") from None
    if done.returncode == 3:
        raise VllmPythonError(f"{what} {path}: vLLM is not installed in it (install vLLM's CPU build there, "
                              "e.g. with ./scripts/setup-vllm)")
    if done.returncode == 4:
        raise VllmPythonError(f"{what} {path}: it has vLLM but not kaito's runtime (pip install -e '.[runtime]' "
                              "into the same environment)")
    if done.returncode != 0:
        raise VllmPythonError(f"{what} {path}: checking it failed with exit code {done.returncode}")
    return str(python)


def find_vllm_runtime(flag: str | None, env: Mapping[str, str], executable: str = sys.executable) -> VllmRuntime:
    """The interpreter for vLLM pods by the rules of the module docstring (VllmPythonError: a bad one)."""
    if flag:
        return VllmRuntime(python=check_interpreter(flag, "--vllm-python"), source="--vllm-python")
    if env.get(ENV_VLLM_PYTHON):
        return VllmRuntime(python=check_interpreter(env[ENV_VLLM_PYTHON], ENV_VLLM_PYTHON), source=ENV_VLLM_PYTHON)
    if importlib.util.find_spec("vllm") is not None:
        return VllmRuntime(python=executable, source="vLLM is installed in the control plane's interpreter")
    return NO_VLLM


def build_configmap(runtime: VllmRuntime) -> dict[str, Any]:
    """What the control plane writes at start: its choice, for the other processes of the cluster."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP_NAME, "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "kaito"}},
            "data": {_KEY_PYTHON: runtime.python or "", _KEY_SOURCE: runtime.source}}


def parse_configmap(obj: Mapping[str, Any]) -> VllmRuntime:
    data = obj.get("data") or {}
    return VllmRuntime(python=data.get(_KEY_PYTHON) or None, source=data.get(_KEY_SOURCE) or "unknown")


async def read_vllm_runtime(cluster: protocol.Cluster) -> VllmRuntime | None:
    """The running (or last) control plane's choice; None when none was recorded (a cluster made by
    an older kaito, or one whose plane never started)."""
    try:
        return parse_configmap(await cluster.get(protocol.CONFIGMAP, CONFIGMAP_NAME, NAMESPACE))
    except errors.NotFound:
        return None
