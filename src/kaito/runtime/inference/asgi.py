"""API-key check and request counting as a pure ASGI middleware.

Starlette's `BaseHTTPMiddleware` (what `@app.middleware("http")` builds) runs the app in a separate
task and pipes `receive` and the response through memory streams; behind it a route waiting for
`http.disconnect` sometimes never sees it (Starlette's known problem, which vLLM also hit and
solved by listening on the raw `receive`), and every streamed chunk pays for an extra hop. This
middleware passes `receive` and `send` straight through, only watching the status go by.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from kaito.runtime.inference.metrics import ServerMetrics
from kaito.runtime.ui import router as ui

OPEN_PATHS = frozenset({"/", "/health", "/healthz", "/ready", *ui.PAGE_PATHS})  # the chat page asks for the key itself


class AuthAndCount:
    def __init__(self, app, *, api_key: str | None, metrics: ServerMetrics,
                 unauthorized: Callable[[str], dict]) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key else None
        self.metrics = metrics
        self.unauthorized = unauthorized  # path -> error body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "")
        if self.expected is not None and path not in OPEN_PATHS:
            given = dict(scope.get("headers") or ()).get(b"authorization")
            if given != self.expected:
                body = json.dumps(self.unauthorized(path)).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                self.metrics.http_requests.labels("unauthorized", method, "401").inc()
                return
        status = {"code": 500}

        async def watch(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            self.metrics.http_requests.labels(getattr(route, "path", "unmatched"), method,
                                              str(status["code"])).inc()
