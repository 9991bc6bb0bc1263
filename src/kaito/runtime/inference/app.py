"""The HTTP routes: KAITO's (`/`, `/health`, `/healthz`, `/chat`) and the OpenAI API, thin over the service.

The port opens at once; the model loads in the background (progress in the log) while `/health`,
`/healthz` and `/ready` answer 503 until it is loaded (KAITO's texts: `{"status": "Healthy"}`,
`{"detail": "Model not initialized"}`). Errors map to HTTP in one place (`_error_response`): engine
errors carry their status; schema errors are 400 on the OpenAI routes (OpenAI error object) and 422
elsewhere; a full queue is KAITO's 429 (`rate_limit_exceeded`, `Retry-After`); nothing a client
sends yields a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kaito.runtime import limits
from kaito.runtime.inference import engine as api
from kaito.runtime.inference import openai_output as out
from kaito.runtime.inference import protocol_kaito as kaito_proto
from kaito.runtime.inference import protocol_openai as oai
from kaito.runtime.inference.admission import Admission
from kaito.runtime.inference.asgi import AuthAndCount
from kaito.runtime.inference.kaito_chat import answer_kaito_chat, wait_for_disconnect
from kaito.runtime.inference.metrics import ServerMetrics
from kaito.runtime.inference.protocol_common import safe_text
from kaito.runtime.inference.service import ClientGone, InferenceService
from kaito.runtime.inference.settings import ServerSettings
from kaito.runtime.inference.streaming import build_stream
from kaito.runtime.ui import router as ui

log = logging.getLogger("kaito.runtime.inference")
NOT_LOADED = "Model not initialized"  # KAITO's /health and /healthz text while there is no model


def _error_body(path: str, status: int, message: str, code: str | int | None = None) -> dict:
    message = safe_text(message)
    if path == "/chat" and status in (400, 404, 422, 503):
        return {"detail": message}  # KAITO's shape
    if status == 429:
        return out.build_error(message, "requests", code)  # KAITO's guard body: type `requests`
    kind = "invalid_request_error" if status < 500 or status == 503 else "server_error"
    return out.build_error(message, kind, code or status)


def _error_response(request: Request, status: int, message: str, code: str | int | None = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_error_body(request.url.path, status, message, code), status_code=status, headers=headers)


def create_app(settings: ServerSettings, engine: api.EngineClient | None = None, on_load_failure=None) -> FastAPI:
    """Build the app; `engine` defaults to the one `--engine` selects (tests may pass their own).

    `on_load_failure(message)` is called when the model cannot load (the CLI then exits non-zero);
    without it the server stays up and answers 503 with the reason.
    """
    metrics = ServerMetrics(settings.model_name)
    if engine is None:
        from kaito.runtime.inference.engines import select_engine

        engine = select_engine(settings)
    engine.observe_steps(metrics.observe_step)
    metrics.bind_engine_stats(engine.stats)
    admission = Admission(max_running=settings.max_running, queue_limit=settings.queue_limit)
    service = InferenceService(engine, metrics, (settings.model_name, settings.model), admission)
    state: dict[str, object] = {}

    async def load() -> None:
        try:
            await engine.start()
        except Exception as exc:  # logged by the engine; /ready and /healthz answer 503 with the reason
            if on_load_failure is not None:
                on_load_failure(str(exc))
            return
        metrics.load_seconds.labels(settings.model_name).set(engine.load_state().seconds or 0.0)

    def formatter() -> out.LogprobFormatter:
        if "formatter" not in state:
            state["formatter"] = out.LogprobFormatter(engine.tokenizer())
        return state["formatter"]  # type: ignore[return-value]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        state["loader"] = asyncio.create_task(load())
        yield
        state["loader"].cancel()  # type: ignore[union-attr]
        await engine.shutdown()

    app = FastAPI(title="KAITO model server", lifespan=lifespan)
    app.state.engine = engine
    app.state.metrics = metrics
    app.include_router(ui.build_router())  # the chat page at /ui
    app.state.admission = admission
    app.add_middleware(limits.RequestLimits, limits=limits.MODEL_SERVER)  # body size, depth, deadline
    app.add_middleware(AuthAndCount, api_key=settings.api_key, metrics=metrics,
                       unauthorized=lambda path: _error_body(path, 401, "missing or wrong API key", "invalid_api_key"))

    @app.exception_handler(api.EngineError)
    async def engine_error(request: Request, exc: api.EngineError):
        headers = None
        if isinstance(exc, api.QueueFull):
            headers = {"Retry-After": str(exc.retry_after)}
            metrics.rate_limited.inc()
        elif exc.status >= 500 and not isinstance(exc, api.EngineNotReady):
            log.error("request failed: %s", exc)
        return _error_response(request, exc.status, str(exc), exc.code, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors())
        status = 400 if request.url.path.startswith("/v1/") else 422
        return _error_response(request, status, problems or "malformed request", "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error_response(request, exc.status_code, str(exc.detail))

    # --- health ------------------------------------------------------------------------------
    @app.get("/")
    async def root():
        return {"message": "Server is running"}

    async def healthy():
        if not await engine.health():
            return JSONResponse({"detail": engine.load_state().error or NOT_LOADED}, status_code=503)
        return {"status": "Healthy"}

    app.get("/health")(healthy)  # KAITO v0.12's probe path
    app.get("/healthz")(healthy)  # KAITO v0.3.2's probe path

    @app.get("/ready")
    async def ready():
        if not await engine.health():
            raise api.EngineNotReady(engine.load_state().reason)
        return {"status": "ready"}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.render(), media_type=metrics.content_type)

    # --- KAITO /chat -------------------------------------------------------------------------
    @app.post("/chat")
    async def chat(body: kaito_proto.KaitoChatRequest, request: Request):
        return await answer_kaito_chat(service, engine, body, settings.pipeline, request)

    # --- OpenAI ------------------------------------------------------------------------------
    @app.get("/v1/models")
    async def models():
        info = engine.model_info()
        return out.build_model_list(info.served_model_name, info.adapters, info.max_model_len)

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        info = engine.model_info()
        for entry in out.build_model_list(info.served_model_name, info.adapters, info.max_model_len)["data"]:
            if entry["id"] == model_id:
                return entry
        raise api.UnknownModel(f"The model `{model_id}` does not exist; see GET /v1/models")

    @app.post("/v1/chat/completions")
    async def chat_completions(body: oai.ChatCompletionRequest, request: Request):
        adapter = service.resolve_adapter(body.model)
        prompt = service.build_chat_prompt([m.build_template_message() for m in body.messages])
        ids = service.tokenize(prompt, add_special_tokens=False)
        max_tokens = service.compute_max_tokens(ids, body.requested_max_tokens)
        rid = service.new_request_id("chatcmpl")
        gens = [api.GenerationRequest(request_id=f"{rid}-{i}", prompt_token_ids=ids, adapter=adapter,
                                      params=body.build_sampling(max_tokens, i, logprobs=body.wanted_logprobs))
                for i in range(body.n)]
        run = service.start(gens)
        fmt = formatter() if body.logprobs else None
        name = body.model or settings.model_name
        if body.stream:
            return build_stream(run, service.merged_events(run), rid=rid, model=name, chat=True,
                                usage_prompt_tokens=len(ids) if body.include_usage else None, formatter=fmt)
        try:
            results = await service.collect(run, lambda: wait_for_disconnect(request))
        except ClientGone:
            return Response(status_code=499)
        usage = out.build_usage(len(ids), sum(r.completion_tokens for r in results))
        choices = [(r.text, r.finish_reason, fmt.chat([lp for e in r.events for lp in e.logprobs]) if fmt else None)
                   for r in results]
        return out.build_chat_response(rid, name, choices, usage)

    @app.post("/v1/completions")
    async def completions(body: oai.CompletionRequest, request: Request):
        adapter = service.resolve_adapter(body.model)
        try:
            prompts = body.build_prompts()
        except ValueError as exc:
            raise api.InvalidRequest(str(exc)) from None
        rid = service.new_request_id("cmpl")
        gens, texts, prompt_tokens = [], [], 0
        wants_prompt_logprobs = body.logprobs if body.echo else None
        for p_index, prompt in enumerate(prompts):
            ids = service.tokenize(prompt)
            max_tokens = service.compute_max_tokens(ids, body.requested_max_tokens)
            prompt_tokens += len(ids)
            for i in range(body.n):
                gens.append(api.GenerationRequest(
                    request_id=f"{rid}-{p_index * body.n + i}", prompt_token_ids=ids, adapter=adapter,
                    params=body.build_sampling(max_tokens, i, logprobs=body.logprobs,
                                               prompt_logprobs=wants_prompt_logprobs)))
                texts.append(prompt if isinstance(prompt, str) else engine.tokenizer().decode(prompt))
        run = service.start(gens)
        fmt = formatter() if body.logprobs is not None else None
        name = body.model or settings.model_name
        echo = texts if body.echo else None
        if body.stream:
            return build_stream(run, service.merged_events(run), rid=rid, model=name, chat=False,
                                usage_prompt_tokens=prompt_tokens if body.include_usage else None, formatter=fmt,
                                echo=echo, echo_logprobs=wants_prompt_logprobs is not None)
        try:
            results = await service.collect(run, lambda: wait_for_disconnect(request))
        except ClientGone:
            return Response(status_code=499)
        usage = out.build_usage(prompt_tokens, sum(r.completion_tokens for r in results))
        choices = []
        for index, r in enumerate(results):
            logprobs = None
            if fmt is not None:
                logprobs = fmt.completion([lp for e in r.events for lp in e.logprobs])
                first = r.events[0].prompt_logprobs if r.events else None
                if echo is not None and first is not None:
                    logprobs = out.merge_completion_logprobs(
                        fmt.echoed_prompt(gens[index].prompt_token_ids, first), logprobs)
            choices.append(((echo[index] if echo else "") + r.text, r.finish_reason, logprobs))
        return out.build_completion_response(rid, name, choices, usage)

    return app
