"""The HTTP routes of KAITO v0.12's RAG service (§4.4–4.5): same paths, shapes and status codes.

Routes are thin over `RagService` and `chat.py`. Errors map to HTTP once, here: a `RagError`
becomes its status with KAITO's `{"detail": message}` body (404 unknown index, 400 bad input,
409 load over an existing index — KAITO re-wraps that one into a 500 — 502 unreachable upstream,
503 chat without an LLM); schema errors are FastAPI's 422 (out-of-range counts, malformed
documents); anything else is a bug: logged with its traceback, answered 500.

Retrieval scores: `score` is normalised reciprocal-rank fusion of the dense (cosine) and BM25
rankings, `dense_score`/`sparse_score` each side's own score (see `retrieval.py`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from kaito.runtime import limits
from kaito.runtime.rag import chat, protocol
from kaito.runtime.rag.errors import RagError
from kaito.runtime.rag.server import Runtime
from kaito.runtime.ui import router as ui

log = logging.getLogger("kaito.runtime.rag")


def create_app(runtime: Runtime) -> FastAPI:
    settings, service, metrics = runtime.settings, runtime.service, runtime.metrics
    RetrieveRequest = protocol.build_retrieve_request_model(settings.max_top_k)  # noqa: N806

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        await runtime.start()
        yield
        await runtime.stop()

    app = FastAPI(title="KAITO RAG Engine", lifespan=lifespan,
                  description="Index documents, retrieve them with hybrid search (dense + BM25, reciprocal-rank "
                              "fusion), and chat through an LLM with the retrieved context.")
    app.state.runtime = runtime
    app.include_router(ui.build_router())  # the chat page at /ui: pick an index, see each answer's sources
    app.add_middleware(limits.RequestLimits, limits=limits.RAG_SERVICE)  # body size, depth, deadline

    @app.middleware("http")
    async def measure(request: Request, call_next):
        if request.url.path in ("/health", "/metrics") or request.url.path in ui.PAGE_PATHS:
            return await call_next(request)
        metrics.running.inc()
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            metrics.running.dec()
            route = request.scope.get("route")
            metrics.observe_request(request.method, getattr(route, "path", None), status,
                                    time.perf_counter() - started)

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError):
        if exc.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/health", response_model=protocol.HealthStatus)
    async def health():
        return protocol.HealthStatus(status="Healthy")

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.post("/index", response_model=list[protocol.Document])
    async def index_documents(request: protocol.IndexRequest):
        ids = await service.index(request.index_name, request.documents)
        return [protocol.Document(doc_id=doc_id, text=doc.text, metadata=doc.metadata)
                for doc_id, doc in zip(ids, request.documents, strict=True)]

    @app.get("/indexes", response_model=list[str])
    async def list_indexes():
        return list(service.indexes)

    @app.get("/indexes/{index_name}/documents", response_model=protocol.ListDocumentsResponse)
    async def list_documents(index_name: str, limit: int = Query(10, ge=1, le=100), offset: int = Query(0, ge=0),
                             max_text_length: int | None = Query(1000, ge=1),
                             metadata_filter: str | None = Query(None)):
        parsed = None
        if metadata_filter:
            try:
                parsed = json.loads(metadata_filter)
            except json.JSONDecodeError:
                raise RagError("Invalid metadata filter format. Must be a valid JSON string.") from None
            if not isinstance(parsed, dict):
                raise RagError("Invalid metadata filter format. Must be a JSON object of key-value pairs.")
        return await service.list_documents(unquote(index_name), limit, offset, max_text_length, parsed)

    @app.post("/indexes/{index_name}/documents", response_model=protocol.UpdateDocumentResponse)
    async def update_documents(index_name: str, request: protocol.UpdateDocumentRequest):
        return await service.update(index_name, request.documents)

    @app.post("/indexes/{index_name}/documents/delete", response_model=protocol.DeleteDocumentResponse)
    async def delete_documents(index_name: str, request: protocol.DeleteDocumentRequest):
        return await service.delete_documents(index_name, request.doc_ids)

    @app.delete("/indexes/{index_name}")
    async def delete_index(index_name: str):
        await service.delete_index(index_name)
        return {"message": f"Successfully deleted index {index_name}."}

    @app.post("/persist/{index_name}")
    async def persist_index(index_name: str, path: str | None = Query(None)):
        target = Path(path) if path else settings.persist_dir / index_name
        await service.persist(index_name, target)
        return {"message": f"Successfully persisted index {index_name} to {target}."}

    @app.post("/load/{index_name}")
    async def load_index(index_name: str, path: str | None = Query(None), overwrite: bool = Query(False)):
        source = Path(path) if path else settings.persist_dir / index_name
        await service.load(index_name, source, overwrite)
        return {"message": f"Successfully loaded index {index_name} from {source}."}

    async def retrieve(request):
        started = time.perf_counter()
        results, candidates = await service.retrieve(request.index_name, request.query, request.max_node_count,
                                                     request.metadata_filter)
        metrics.observe_retrieval(results, candidates, time.perf_counter() - started)
        return {"query": request.query, "results": [r.as_dict() for r in results], "count": len(results)}

    # the request model is built from the settings (RAG_MAX_TOP_K), so its annotation is set here
    retrieve.__annotations__["request"] = RetrieveRequest
    app.post("/retrieve", response_model=protocol.RetrieveResponse)(retrieve)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: dict[str, Any] = Body(...)):
        answer = await chat.chat_completion(service, runtime.llm, body, fill_ratio=settings.context_fill_ratio,
                                            threshold=settings.similarity_threshold, max_top_k=settings.max_top_k)
        if isinstance(answer, dict):
            return JSONResponse(answer)
        return StreamingResponse(answer, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return app
