"""Engines behind `EngineClient`, and the choice between them (`--engine auto|transformers|vllm`)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from kaito.runtime.inference.settings import ServerSettings


class EngineUnavailable(RuntimeError):
    """The engine asked for cannot run here; the message says what is missing."""


def plan_engine(settings: ServerSettings, vllm_installed: bool, cuda_available: bool) -> str:
    """auto -> vllm when it is installed and a GPU is there, else transformers."""
    if settings.engine == "auto":
        return "vllm" if vllm_installed and cuda_available else "transformers"
    return settings.engine


def select_engine(settings: ServerSettings, on_step: Callable[[int], None] | None = None):
    vllm_installed = importlib.util.find_spec("vllm") is not None
    cuda = False
    if vllm_installed or settings.engine == "vllm":
        import torch

        cuda = torch.cuda.is_available()
    choice = plan_engine(settings, vllm_installed, cuda)
    if choice == "vllm" and not vllm_installed:
        raise EngineUnavailable("--engine vllm: vLLM is not installed (pip install 'kaito[vllm]'; it needs a "
                                "CUDA GPU); use --engine transformers")
    if choice == "vllm" and not cuda:
        raise EngineUnavailable("--engine vllm: no CUDA GPU is available; use --engine transformers")
    if choice == "vllm":  # vLLM's own OpenAI server hosts it; `__main__` hands the process to `vllm_server`
        raise EngineUnavailable("--engine vllm serves through vLLM's own OpenAI server: start it with "
                                "`kaito serve --engine vllm` (python -m kaito.runtime.inference)")
    from kaito.runtime.inference.engines.transformers_engine import TransformersEngine

    return TransformersEngine(settings, on_step=on_step)
