"""The one protocol every engine implements, and the data that crosses it.

Routes speak only to an `EngineClient`: they submit a `GenerationRequest`, iterate the
`TokenEvent`s it yields, and cancel when the client goes away. The transformers engine (CPU and
GPU, batching) and the vLLM engine (GPU) both sit behind this, so the HTTP layer never knows which
one runs, and never asks an engine for anything the protocol does not declare. Errors a client
caused are typed here, so the app maps them to HTTP statuses in one place. Model-load bookkeeping
(stage, time, failure) is `ModelLoad`, shared by every engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal, Protocol, TypeVar, runtime_checkable

FinishReason = Literal["stop", "length", "abort"]
log = logging.getLogger("kaito.runtime.inference")
_T = TypeVar("_T")


class EngineName(StrEnum):
    """Every engine the server knows; `engines.ENGINES` maps each to how it is built."""

    TRANSFORMERS = "transformers"
    VLLM = "vllm"


AUTO_ENGINE = "auto"  # `--engine auto`: the first engine of `engines.AUTO_ORDER` that can run here


SAMPLING_EPS = 1e-5  # a temperature below this is greedy (vLLM's rule)
MIN_TEMPERATURE = 1e-2  # smaller positive temperatures are raised to this (vLLM's rule): no inf/NaN


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    """Per-request sampling: each row of a batch honours its own values.

    The OpenAI and KAITO protocols validate the ranges at the door; the sampler still treats
    any value defensively, so no request can make a decode step fail.
    """

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    min_p: float = 0.0  # 0 = off
    repetition_penalty: float = 1.0  # on prompt and output tokens (transformers' rule)
    presence_penalty: float = 0.0  # on output tokens (OpenAI's and vLLM's rule)
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # vLLM's extensions, kept under the same names: a random model may emit EOS at any step, and a
    # benchmark or a test that wants exact token counts asks the engine to ignore it.
    ignore_eos: bool = False
    min_tokens: int = 0
    logprobs: int | None = None  # None: none; k: the chosen token's log-probability and the top k
    prompt_logprobs: int | None = None  # the same for each prompt token (completions with echo)
    json_schema: str | None = None  # output constrained to JSON matching this schema (JSON text)

    @property
    def greedy(self) -> bool:
        return self.temperature < SAMPLING_EPS


@dataclass(frozen=True, kw_only=True)
class GenerationRequest:
    request_id: str
    prompt_token_ids: tuple[int, ...]
    params: SamplingParams
    adapter: str | None = None  # None = the default model (KAITO: the weighted adapter mix)


@dataclass(frozen=True, kw_only=True)
class TokenLogprob:
    """A token's log-probability under the model (before sampling settings), and the top alternatives."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, kw_only=True)
class TokenEvent:
    """One step of one request: the new token(s) and the text they completed."""

    token_ids: tuple[int, ...]
    text: str
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()  # one per token in `token_ids`, when asked for
    prompt_logprobs: tuple[TokenLogprob | None, ...] | None = None  # first event only; None for token 0


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    served_model_name: str
    adapters: tuple[str, ...]
    max_model_len: int
    engine: EngineName
    chat_template: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class EngineStats:
    """The load now (`running`, `waiting`) and counters since start.

    Equality compares the load only: `stats() == EngineStats()` means nothing runs or waits.
    """

    running: int = 0  # requests in the decoding batch (or being prefilled)
    waiting: int = 0  # requests queued for a batch slot
    prefills: int = field(default=0, compare=False)  # forward passes that prefilled new rows
    prefilled_rows: int = field(default=0, compare=False)  # rows those passes started (mean batch: ratio)
    aborted: int = field(default=0, compare=False)  # requests dropped unfinished (client gone, cancel)

    @property
    def mean_prefill_batch(self) -> float:
        return self.prefilled_rows / self.prefills if self.prefills else 0.0


@dataclass(frozen=True, kw_only=True)
class LoadState:
    """Where loading the model stands: what `/ready`, `/healthz` and the metrics report."""

    ready: bool = False
    stage: str = "waiting to start"
    error: str | None = None
    seconds: float | None = None  # how long the load took, once it is done

    @property
    def reason(self) -> str:
        """Why the model cannot answer yet, in words for a 503."""
        if self.error:
            return self.error
        return f"the model is still loading ({self.stage})"


class ModelLoad:
    """The load bookkeeping every engine shares: stage, duration, failure, logged once each."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._state = LoadState()

    @property
    def state(self) -> LoadState:
        return self._state

    def stage(self, stage: str) -> None:
        """Record (and log) the step the load is at; called by loaders as they go."""
        self._state = replace(self._state, stage=stage)
        log.info("Loading: %s", stage)

    async def run(self, load: Callable[[], Awaitable[_T]]) -> _T:
        """Await `load()`, timing it; a failure is recorded as the state's error and re-raised."""
        started = self._clock()
        try:
            result = await load()
        except Exception as exc:
            self._state = replace(self._state, error=str(exc) or type(exc).__name__)
            log.error("Model load failed: %s", exc)
            raise
        self._state = replace(self._state, ready=True, stage="loaded", seconds=self._clock() - started)
        log.info("Model loaded successfully")
        return result


class EngineError(Exception):
    """Base of errors the engine raises for a request; `status` is the HTTP code they map to."""

    status = 500
    code = "internal_error"


class EngineNotReady(EngineError):
    status = 503
    code = "model_not_ready"


class ContextTooLong(EngineError):
    status = 400
    code = "context_length_exceeded"


class QueueFull(EngineError):
    status = 429
    code = "rate_limit_exceeded"  # what KAITO's guard and OpenAI clients use

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownModel(EngineError):
    status = 404
    code = "model_not_found"


class InvalidRequest(EngineError):
    status = 400
    code = "invalid_request"


@runtime_checkable
class EngineClient(Protocol):
    """What the server needs from an engine: all of it, so the app never probes for more."""

    @property
    def name(self) -> EngineName: ...

    def load_state(self) -> LoadState:
        """Loading progress, failure and duration (a snapshot)."""

    def stats(self) -> EngineStats:
        """Requests running and waiting now (read at each metrics scrape)."""

    def observe_steps(self, callback: Callable[[int], None]) -> None:
        """Call `callback(rows)` at each decode step; an engine that cannot see its steps ignores it."""

    def model_info(self) -> ModelInfo: ...

    def tokenizer(self): ...  # a transformers tokenizer: chat templates and prompt tokens

    def check(self, request: GenerationRequest) -> None:
        """Raise the `EngineError` this request would meet, before the route commits to a response."""

    async def start(self) -> None:
        """Load the model (in the background); `load_state().ready` turns True when done."""

    def generate(self, request: GenerationRequest) -> AsyncIterator[TokenEvent]:
        """Stream events for one request; raises `EngineError` subclasses for bad requests.

        Called when the route commits to answering (after `check` and admission); an engine should
        queue the request right then, so that queue order is arrival order.
        """

    async def cancel(self, request_id: str) -> None: ...

    async def health(self) -> bool: ...

    async def shutdown(self) -> None: ...
