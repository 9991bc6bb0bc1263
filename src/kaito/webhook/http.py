"""The admission webhook's HTTPS server: whole JSON requests in, whole responses out.

The webhook must run inside the operator's event loop (it reads ConfigMaps through the async
`Cluster`) and inside the slim operator image, which has no ASGI server (uvicorn and starlette
belong to the runtime profile). The connection handling (h11, keep-alive, TLS, the body and
deadline limits) is `kaito.webhook.connections`, shared with the gateway's front; this layer maps
`Limits` onto it, hands one async handler a `Request` and sends its `Response`. A failing handler
gets a 500 without killing the server.

Hostile or broken clients are answered before any handler sees them, while every other
connection is served on its own task (`Limits`):
- a body over `max_body` gets a 413 as soon as its Content-Length (or its chunks) says so; the
  rest of the body is then read and dropped (up to a bound) so the client reads the 413 instead of
  a connection reset;
- JSON nested deeper than `max_depth` gets a 400: Python's parser (and pydantic after it) would
  recurse until RecursionError, a 500; the depth is counted on the raw bytes, strings left out;
- a request whose headers take over `header_timeout_s`, or whose whole body over
  `request_timeout_s`, from its first byte (a client sending a byte every few seconds), gets a 408
  and the connection is closed; a kept-alive connection idle for `idle_timeout_s` is closed;
- malformed HTTP gets a 400.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11

from kaito.webhook.connections import ConnectionServer, ReadLimits, Responder

log = logging.getLogger(__name__)

# An AdmissionReview of a Workspace is a few KiB; the API server caps requests at 3 MiB.
MAX_BODY = 3 * 1024 * 1024
# A Workspace with a full pod template, wrapped in an AdmissionReview, nests about 20 deep.
MAX_JSON_DEPTH = 100
_THREAD_SCAN = 64 * 1024  # bodies larger than this are scanned off the event loop


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_body: int = MAX_BODY
    max_depth: int = MAX_JSON_DEPTH
    header_timeout_s: float = 10.0  # the API server's webhook timeout is 10 s by default
    request_timeout_s: float = 30.0  # its largest allowed webhook timeout
    idle_timeout_s: float = 60.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer(ConnectionServer):
    """Serves `handler` on host:port, with TLS when `ssl_context` is given; `port=0` picks a free one."""

    def __init__(self, handler: Handler, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                 limits: Limits = Limits()) -> None:  # noqa: B008 - frozen, shared safely
        super().__init__(host, port, ReadLimits(
            max_body=limits.max_body, header_timeout_s=limits.header_timeout_s,
            request_timeout_s=limits.request_timeout_s, idle_timeout_s=limits.idle_timeout_s,
            count_whole_head=False, protocol_error_status=400, drain_refused_body=True), ssl_context)
        self._handler = handler
        self._limits = limits

    async def _answer(self, head: h11.Request, body: bytes, conn: h11.Connection,
                      reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
        request = Request(head.method.decode("ascii"), head.target.decode("latin-1"), headers, body)
        depth = await (asyncio.to_thread(json_depth, request.body) if len(request.body) > _THREAD_SCAN
                       else _done(json_depth(request.body)))
        if depth > self._limits.max_depth:
            response = Response(400, _error_body(f"JSON nested deeper than {self._limits.max_depth} levels"))
        else:
            try:
                response = await self._handler(request)
            except Exception:  # a bug must cost one request, never the server
                log.exception("webhook handler failed", extra={"path": request.path})
                response = Response(500, _error_body("internal error"))
        await Responder(conn, writer).send(response.status, response.body, response.content_type,
                                           list(response.headers.items()))
        return True

    def _error_body(self, status: int, message: str) -> bytes:
        return _error_body(message)


_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_AS_STEP = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings not counted).

    Linear and without recursion, for any bytes: text that is not JSON gets some number, and the
    parser behind says what is wrong with it."""
    steps = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKET).translate(_AS_STEP)
    return max(itertools.accumulate(memoryview(steps).cast("b")), default=0)


async def _done(value: int) -> int:
    return value


def _error_body(message: str) -> bytes:
    import json

    return json.dumps({"error": message}).encode()
