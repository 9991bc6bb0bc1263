"""Engines behind `EngineClient`, registered in one table, and the choice between them (`--engine`).

Each `EngineEntry` says how to tell whether its engine can run on this machine for the settings'
device and how to build it; the import of the engine's module (torch, vLLM) happens only when it is
built. A runtime that serves its own HTTP app (vLLM's OpenAI server) registers `serve` instead of
`build`: the entrypoint then hands it the whole process and the raw command line (vLLM's own flags
pass through to vLLM's parser). `--engine auto` takes the first entry of `AUTO_ORDER` that can run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kaito.runtime.inference.engine import AUTO_ENGINE, EngineClient, EngineName
from kaito.runtime.inference.settings import ServerSettings


class EngineUnavailable(RuntimeError):
    """The engine asked for cannot run here; the message says what is missing."""


@dataclass(frozen=True, kw_only=True)
class EngineEntry:
    name: EngineName
    # None when the engine can run here for these settings (their device), else why not (a sentence)
    unavailable: Callable[[ServerSettings], str | None]
    # an `EngineClient` behind our app ...
    build: Callable[[ServerSettings], EngineClient] | None = None
    # ... or the whole server process given the raw command line, returning its exit code
    serve: Callable[[Sequence[str]], int] | None = None

    def __post_init__(self) -> None:
        if (self.build is None) == (self.serve is None):
            raise ValueError(f"engine {self.name}: exactly one of build and serve")


def _vllm_unavailable(settings: ServerSettings) -> str | None:
    """vLLM runs where its build fits the device: the CUDA build on a GPU, its CPU build anywhere."""
    from kaito.runtime.inference import vllm_platform

    reason = vllm_platform.explain_unavailable(settings.device)
    return None if reason is None else f"--engine vllm: {reason}"


def _build_transformers(settings: ServerSettings) -> EngineClient:
    if settings.engine_process:  # the model's Python apart from the HTTP loop's GIL (engine_process.py)
        from kaito.runtime.inference.engines.engine_process import ProcessEngine

        return ProcessEngine(settings)
    from kaito.runtime.inference.engines.transformers_engine import TransformersEngine

    return TransformersEngine(settings)


def _serve_vllm(argv: Sequence[str]) -> int:
    from kaito.runtime.inference import vllm_server  # vLLM's own OpenAI server, with ours added

    return vllm_server.main(argv)


ENGINES: dict[EngineName, EngineEntry] = {
    EngineName.TRANSFORMERS: EngineEntry(name=EngineName.TRANSFORMERS, unavailable=lambda settings: None,
                                         build=_build_transformers),
    EngineName.VLLM: EngineEntry(name=EngineName.VLLM, unavailable=_vllm_unavailable, serve=_serve_vllm),
}
AUTO_ORDER: tuple[EngineName, ...] = (EngineName.VLLM, EngineName.TRANSFORMERS)


def plan_engine(choice: str, unavailable: Mapping[EngineName, str | None]) -> EngineName:
    """The engine to run for `--engine choice`, given why each engine cannot run here (None: it can).

    `auto` takes the first of `AUTO_ORDER` that can run; a named engine that cannot is an error.
    """
    if choice == AUTO_ENGINE:
        for name in AUTO_ORDER:
            if unavailable.get(name) is None:
                return name
        raise EngineUnavailable("no engine can run here: " + "; ".join(
            str(unavailable[n]) for n in AUTO_ORDER))
    name = EngineName(choice)
    reason = unavailable.get(name)
    if reason is not None:
        raise EngineUnavailable(reason)
    return name


def select_entry(settings: ServerSettings, engines: Mapping[EngineName, EngineEntry] | None = None
                 ) -> EngineEntry:
    """The table entry `settings.engine` means on this machine; `EngineUnavailable` says why not."""
    table = ENGINES if engines is None else engines
    names = AUTO_ORDER if settings.engine == AUTO_ENGINE else (EngineName(settings.engine),)
    # only the engines that may be chosen are probed (probing vLLM imports torch)
    reasons: dict[EngineName, str | None] = {}
    for name in names:
        reasons[name] = table[name].unavailable(settings)
        if settings.engine == AUTO_ENGINE and reasons[name] is None:
            break
    return table[plan_engine(settings.engine, reasons)]


def select_engine(settings: ServerSettings) -> EngineClient:
    """Build the engine `settings.engine` names (for a runtime with its own app, use `select_entry`)."""
    entry = select_entry(settings)
    if entry.build is None:
        raise EngineUnavailable(f"--engine {entry.name} serves its own HTTP app; start it with "
                                "`python -m kaito.runtime.inference`")
    return entry.build(settings)
