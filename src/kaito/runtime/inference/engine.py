"""The one protocol every engine implements, and the data that crosses it.

Routes speak only to an `EngineClient`: they submit a `GenerationRequest`, iterate the
`TokenEvent`s it yields, and cancel when the client goes away. The transformers engine (CPU and
GPU, batching) and the vLLM engine (GPU) both sit behind this, so the HTTP layer never knows which
one runs. Errors a client caused are typed here, so the app maps them to HTTP statuses in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling: each row of a batch honours its own values."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    # vLLM's extensions, kept under the same names: a random model may emit EOS at any step, and a
    # benchmark or a test that wants exact token counts asks the engine to ignore it.
    ignore_eos: bool = False
    min_tokens: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    prompt_token_ids: tuple[int, ...]
    params: SamplingParams
    adapter: str | None = None  # None = the default model (KAITO: the weighted adapter mix)


@dataclass(frozen=True)
class TokenEvent:
    """One step of one request: the new token(s) and the text they completed."""

    token_ids: tuple[int, ...]
    text: str
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ModelInfo:
    served_model_name: str
    adapters: tuple[str, ...]
    max_model_len: int
    engine: str
    chat_template: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


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
    code = "queue_full"

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
    """What the server needs from an engine."""

    @property
    def ready(self) -> bool: ...

    def model_info(self) -> ModelInfo: ...

    def tokenizer(self): ...  # a transformers tokenizer: chat templates and prompt tokens

    def check(self, request: GenerationRequest) -> None:
        """Raise the `EngineError` this request would meet, before the route commits to a response."""

    async def start(self) -> None:
        """Load the model (in the background); `ready` turns True when done."""

    def generate(self, request: GenerationRequest) -> AsyncIterator[TokenEvent]:
        """Stream events for one request; raises `EngineError` subclasses for bad requests."""

    async def cancel(self, request_id: str) -> None: ...

    async def health(self) -> bool: ...

    async def shutdown(self) -> None: ...
