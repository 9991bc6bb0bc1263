"""What we add to vLLM's own OpenAI server: KAITO's routes and KAITO v0.12's 429 guard.

- `/chat` (KAITO v0.3.2 clients: `prompt` or `messages`, `generate_kwargs`, `{"Result": ...}`),
  `/healthz` and `/`, on the same engine as vLLM's routes (through `VllmEngine`), so they share its
  batch and its `vllm:` metrics. The request model and the sampling rules are `protocol_kaito`'s.
- `RateLimitGuard`: KAITO's queue-depth guard. On inference paths it answers 429 with KAITO's body
  (`code: rate_limit_exceeded`) plus `Retry-After` when max(`vllm:num_requests_waiting`, in-flight −
  threshold) exceeds the threshold (vLLM's resolved `max_num_seqs`). The gauge lags a burst, so the
  in-flight count leads it; here it counts a request until its last byte (a stream included), where
  KAITO's counted only until the response started. Rejections count in `kaito_ratelimit_rejected_total`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from kaito.runtime.inference import engine as api
from kaito.runtime.inference import protocol_kaito as kaito_proto
from kaito.runtime.inference.kaito_chat import answer_kaito_chat
from kaito.runtime.inference.openai_output import build_error
from kaito.runtime.inference.service import InferenceService

log = logging.getLogger("kaito.runtime.inference")

GUARDED_PREFIXES = ("/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/pooling",
                    "/score", "/rerank", "/v1/rerank", "/chat")
WAITING_METRIC = "vllm:num_requests_waiting"
RUNNING_METRIC = "vllm:num_requests_running"
RETRY_AFTER_S = 1
STATE_KEY = "kaito_rate_limit"
MIDDLEWARE_PATH = "kaito.runtime.inference.vllm_kaito.RateLimitGuard"


def read_gauge(registry: CollectorRegistry, name: str) -> Callable[[], float]:
    """A reader of one of vLLM's gauges, summed over its labels (one model per server)."""
    only = registry.restricted_registry([name])

    def value() -> float:
        return sum(s.value for family in only.collect() for s in family.samples if s.name == name)

    return value


def read_waiting(registry: CollectorRegistry) -> Callable[[], float]:
    return read_gauge(registry, WAITING_METRIC)


def read_stats(registry: CollectorRegistry) -> Callable[[], api.EngineStats]:
    """Running and waiting requests as vLLM's own gauges report them."""
    running, waiting = read_gauge(registry, RUNNING_METRIC), read_waiting(registry)
    return lambda: api.EngineStats(running=int(running()), waiting=int(waiting()))


def build_rejection_body(effective: int, threshold: int) -> bytes:
    return json.dumps({"error": {
        "message": f"Too many requests: {effective} waiting exceeds max-num-seqs ({threshold}); retry later.",
        "type": "requests", "param": None, "code": "rate_limit_exceeded"}}).encode()


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """The guard's settings, put on `app.state.kaito_rate_limit` once the engine is built."""

    threshold: int
    waiting: Callable[[], float]
    rejected: Counter | None = None


class RateLimitGuard:
    """Pure ASGI middleware (no buffering of streams): KAITO's 429 guard on inference paths.

    vLLM installs it from `--middleware` before the engine exists (as KAITO does), so its settings
    are read from the app's state; until they are there, it lets everything through.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.in_flight = 0

    async def __call__(self, scope, receive, send) -> None:
        limit: RateLimit | None = None
        if scope["type"] == "http" and scope["path"].startswith(GUARDED_PREFIXES) and "app" in scope:
            limit = getattr(scope["app"].state, STATE_KEY, None)
        if limit is None:
            await self.app(scope, receive, send)
            return
        # no await between the read and the increment: concurrent requests cannot interleave here
        effective = max(limit.waiting(), self.in_flight - limit.threshold)
        if effective > limit.threshold:
            if limit.rejected is not None:
                limit.rejected.inc()
            body = build_rejection_body(int(effective), limit.threshold)
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                    (b"retry-after", str(RETRY_AFTER_S).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def build_rejected_counter(registry: CollectorRegistry) -> Counter:
    return Counter("kaito_ratelimit_rejected", "Requests rejected with HTTP 429 by KAITO's queue-depth guard",
                   registry=registry)


def _kaito_error(exc: api.EngineError) -> JSONResponse:
    if exc.status in (400, 404, 422, 503):  # KAITO's FastAPI shape for /chat
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    return JSONResponse(build_error(str(exc), "server_error" if exc.status >= 500 else "invalid_request_error",
                                    exc.code), status_code=exc.status)


def build_kaito_router(service: InferenceService, *, pipeline: str, api_key: str | None) -> APIRouter:
    """KAITO's `/`, `/healthz` and `/chat` over `service` (a `VllmEngine` inside)."""
    router = APIRouter()
    engine = service.engine

    @router.get("/")
    async def root():
        return {"message": "Server is running"}

    @router.get("/healthz")
    async def healthz():
        if not await engine.health():
            return JSONResponse({"detail": "Model not initialized"}, status_code=503)
        return {"status": "Healthy"}

    @router.post("/chat")
    async def chat(request: Request):
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return JSONResponse({"detail": "missing or wrong API key"}, status_code=401)
        try:
            body = kaito_proto.KaitoChatRequest.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": ["body"], "msg": str(exc),
                                                                             "type": "json_invalid"}]
            return JSONResponse({"detail": json.loads(json.dumps(errors, default=str))}, status_code=422)
        try:
            return await answer_kaito_chat(service, engine, body, pipeline, request)
        except api.EngineError as exc:
            return _kaito_error(exc)

    return router
