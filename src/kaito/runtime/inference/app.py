"""The HTTP routes: KAITO's (`/`, `/healthz`, `/chat`) and the OpenAI API, thin over the service.

The port opens at once; the model loads in the background (progress in the log) while `/health`
says the process is up and `/ready` and `/healthz` answer 503 until it is loaded. Errors map to
HTTP in one place (`_error_response`): engine errors carry their status; schema errors are 400
on the OpenAI routes (OpenAI error object) and 422 elsewhere; nothing a client sends yields a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kaito.runtime.inference import engine as api
from kaito.runtime.inference import protocol_kaito as kaito_proto
from kaito.runtime.inference import protocol_openai as oai
from kaito.runtime.inference.metrics import ServerMetrics
from kaito.runtime.inference.service import ClientGone, InferenceService, build_sse
from kaito.runtime.inference.settings import ServerSettings
from kaito.runtime.ui import router as ui

log = logging.getLogger("kaito.runtime.inference")
_OPEN_PATHS = {"/", "/health", "/healthz", "/ready", *ui.PAGE_PATHS}


def _error_response(request: Request, status: int, message: str, code: str | None = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    if request.url.path == "/chat" and status in (400, 404, 422, 503):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)  # KAITO's shape
    kind = "invalid_request_error" if status < 500 or status == 503 else "server_error"
    return JSONResponse(oai.build_error(message, kind, code or status), status_code=status, headers=headers)


def create_app(settings: ServerSettings, engine=None, on_load_failure=None) -> FastAPI:
    """Build the app; `engine` defaults to the one `--engine` selects (tests may pass their own).

    `on_load_failure(message)` is called when the model cannot load (the CLI then exits non-zero);
    without it the server stays up and answers 503 with the reason.
    """
    metrics = ServerMetrics(settings.model_name)
    if engine is None:
        from kaito.runtime.inference.engines import select_engine

        engine = select_engine(settings, on_step=metrics.observe_step)
    if getattr(engine, "on_step", "absent") is None:  # the batch-size histogram needs the engine's steps
        engine.on_step = metrics.observe_step
    if hasattr(engine, "stats"):
        metrics.bind_engine_stats(engine.stats)
    service = InferenceService(engine, metrics, (settings.model_name, settings.model))
    state: dict[str, object] = {}

    async def load() -> None:
        try:
            await engine.start()
        except Exception as exc:  # logged by the engine; /ready and /healthz answer 503 with the reason
            if on_load_failure is not None:
                on_load_failure(str(exc))
            return
        if getattr(engine, "load_seconds", None) is not None:
            metrics.load_seconds.labels(settings.model_name).set(engine.load_seconds)

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

    @app.middleware("http")
    async def auth_and_count(request: Request, call_next):
        path = request.url.path
        authorized = request.headers.get("authorization") == f"Bearer {settings.api_key}"
        if settings.api_key and path not in _OPEN_PATHS and not authorized:
            response: Response = _error_response(request, 401, "missing or wrong API key", "invalid_api_key")
            metrics.http_requests.labels("unauthorized", request.method, "401").inc()
            return response
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.http_requests.labels(getattr(route, "path", "unmatched"), request.method,
                                     str(response.status_code)).inc()
        return response

    @app.exception_handler(api.EngineError)
    async def engine_error(request: Request, exc: api.EngineError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, api.QueueFull) else None
        if exc.status >= 500 and not isinstance(exc, api.EngineNotReady):
            log.error("request failed: %s", exc)
        return _error_response(request, exc.status, str(exc), exc.code, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
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

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        if not await engine.health():
            raise api.EngineNotReady(getattr(engine, "load_error", None) or "the model is still loading")
        return {"status": "ready"}

    @app.get("/healthz")
    async def healthz():
        if not await engine.health():
            return JSONResponse({"detail": getattr(engine, "load_error", None) or "Model not initialized"},
                                status_code=503)
        return {"status": "Healthy"}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.render(), media_type=metrics.content_type)

    # --- KAITO /chat -------------------------------------------------------------------------
    @app.post("/chat")
    async def chat(body: kaito_proto.KaitoChatRequest, request: Request):
        if settings.pipeline == "text-generation":
            if not body.prompt:
                raise api.InvalidRequest("Text generation needs the parameter `prompt`")
            prompt = (body.prefix or "") + body.prompt
            ids = service.tokenize(prompt)
        else:
            if not body.messages:
                raise api.InvalidRequest("Conversational mode needs the parameter `messages`")
            prompt = service.build_chat_prompt([m.model_dump() for m in body.messages])
            ids = service.tokenize(prompt, add_special_tokens=False)
        params = kaito_proto.build_kaito_sampling(body.generate_kwargs, len(ids))
        if body.handle_long_generation == "hole":  # KAITO/transformers: drop the prompt's start to fit
            keep = engine.model_info().max_model_len - params.max_tokens
            ids = ids[-keep:] if keep > 0 else ids
        gen = api.GenerationRequest(service.new_request_id("chat"), ids, params)
        service.prepare([gen])
        try:
            [result] = await service.collect([gen], request.is_disconnected)
        except ClientGone:
            return Response(status_code=499)
        return kaito_proto.build_kaito_result(settings.pipeline, prompt, result.text, body.return_full_text)

    # --- OpenAI ------------------------------------------------------------------------------
    @app.get("/v1/models")
    async def models():
        info = engine.model_info()
        return oai.build_model_list(info.served_model_name, info.adapters, info.max_model_len)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: oai.ChatCompletionRequest, request: Request):
        adapter = service.resolve_adapter(body.model)
        prompt = service.build_chat_prompt([m.build_template_message() for m in body.messages])
        ids = service.tokenize(prompt, add_special_tokens=False)
        max_tokens = service.compute_max_tokens(ids, body.requested_max_tokens)
        rid = service.new_request_id("chatcmpl")
        gens = [api.GenerationRequest(f"{rid}-{i}", ids, body.build_sampling(max_tokens, i), adapter)
                for i in range(body.n)]
        service.prepare(gens)
        if body.stream:
            return _stream(service.merged_events(gens), rid, body.model, "chat.completion.chunk",
                           body.n, len(ids) if body.include_usage else None)
        try:
            results = await service.collect(gens, request.is_disconnected)
        except ClientGone:
            return Response(status_code=499)
        usage = oai.build_usage(len(ids), sum(r.completion_tokens for r in results))
        return oai.build_chat_response(rid, body.model, [(r.text, r.finish_reason) for r in results], usage)

    @app.post("/v1/completions")
    async def completions(body: oai.CompletionRequest, request: Request):
        adapter = service.resolve_adapter(body.model)
        try:
            prompts = body.build_prompts()
        except ValueError as exc:
            raise api.InvalidRequest(str(exc)) from None
        rid = service.new_request_id("cmpl")
        gens, prompt_tokens = [], 0
        for p_index, prompt in enumerate(prompts):
            ids = service.tokenize(prompt)
            max_tokens = service.compute_max_tokens(ids, body.requested_max_tokens)
            prompt_tokens += len(ids)
            gens += [api.GenerationRequest(f"{rid}-{p_index * body.n + i}", ids,
                                           body.build_sampling(max_tokens, i), adapter) for i in range(body.n)]
        service.prepare(gens)
        if body.stream:
            return _stream(service.merged_events(gens), rid, body.model, "text_completion", len(gens),
                           prompt_tokens if body.include_usage else None)
        try:
            results = await service.collect(gens, request.is_disconnected)
        except ClientGone:
            return Response(status_code=499)
        usage = oai.build_usage(prompt_tokens, sum(r.completion_tokens for r in results))
        return oai.build_completion_response(rid, body.model, [(r.text, r.finish_reason) for r in results],
                                             usage)

    return app


def _stream(events, rid: str, model: str, kind: str, choices: int, usage_prompt_tokens: int | None
            ) -> StreamingResponse:
    """Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`.

    `usage_prompt_tokens` is set when the client asked for a usage chunk (`stream_options`).
    """
    created = int(time.time())
    chat = kind == "chat.completion.chunk"

    async def body():
        completion_tokens: dict[int, int] = {}
        if chat:
            for index in range(choices):
                yield build_sse(oai.build_chat_chunk(rid, model, created, index, {"role": "assistant",
                                                                                  "content": ""}, None))
        try:
            async for index, event in events:
                completion_tokens[index] = event.completion_tokens
                if not event.text and event.finish_reason is None:
                    continue
                if chat:
                    delta = {"content": event.text} if event.text else {}
                    chunk = oai.build_chat_chunk(rid, model, created, index, delta, event.finish_reason)
                else:
                    chunk = oai.build_completion_chunk(rid, model, created, index, event.text, event.finish_reason)
                yield build_sse(chunk)
        except api.EngineError as exc:  # headers are sent: the error travels in the stream
            yield build_sse(oai.build_error(str(exc), "server_error" if exc.status >= 500 else
                                            "invalid_request_error", exc.code))
        if usage_prompt_tokens is not None:
            usage = oai.build_usage(usage_prompt_tokens, sum(completion_tokens.values()))
            yield build_sse(oai.build_usage_chunk(rid, model, created, kind, usage))
        yield build_sse("[DONE]")

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
