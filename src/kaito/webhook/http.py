"""A small asyncio HTTPS server for the admission webhook, built on h11.

The webhook must run inside the operator's event loop (it reads ConfigMaps through the async
`Cluster`) and inside the slim operator image, which has no ASGI server (uvicorn and starlette
belong to the runtime profile). h11 — already in the base profile through httpx — parses HTTP/1.1
correctly, so this module only moves bytes between a socket and one async handler. A failing
handler gets a 500 without killing the server.

Hostile or broken clients are answered here, before any handler sees them, while every other
connection is served on its own task (`Limits`):
- a body over `max_body` gets a 413 as soon as its Content-Length (or its chunks) says so; the
  rest of the body is then read and dropped (up to a bound) so the client reads the 413 instead of
  a connection reset;
- JSON nested deeper than `max_depth` gets a 400: Python's parser (and pydantic after it) would
  recurse until RecursionError, a 500; the depth is counted on the raw bytes, strings left out;
- a request whose headers take over `header_timeout_s`, or whose whole body over
  `request_timeout_s`, from its first byte (a client sending a byte every few seconds), gets a 408
  and the connection is closed; a kept-alive connection idle for `idle_timeout_s` is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11

log = logging.getLogger(__name__)

# An AdmissionReview of a Workspace is a few KiB; the API server caps requests at 3 MiB.
MAX_BODY = 3 * 1024 * 1024
# A Workspace with a full pod template, wrapped in an AdmissionReview, nests about 20 deep.
MAX_JSON_DEPTH = 100
_DRAIN_LIMIT = 64 * 1024 * 1024  # what is read and dropped after a 413 at most
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


class HttpServer:
    """Serves `handler` on host:port, with TLS when `ssl_context` is given; `port=0` picks a free one."""

    def __init__(self, handler: Handler, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                 limits: Limits = Limits()) -> None:  # noqa: B008 - frozen, shared safely
        self._handler = handler
        self._limits = limits
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self._host, self._port, ssl=self._ssl)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), timeout=5)
        self._server = None

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass  # the client went away or spoke no TLS: nothing to answer
        except asyncio.CancelledError:
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        while True:
            try:
                request = await self._read_request(conn, reader)
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send(conn, writer, Response(400, _error_body(f"bad HTTP request: {exc}"), headers=_CLOSE))
                return
            except _BodyTooLarge:
                await self._send(conn, writer, Response(413, _error_body(
                    f"request body too large: the limit is {self._limits.max_body} bytes"), headers=_CLOSE))
                await self._drain(reader)  # until the client, told to close, does
                return
            except _TooSlow as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    with contextlib.suppress(ConnectionError, h11.LocalProtocolError):
                        await self._send(conn, writer, Response(408, _error_body(str(exc)), headers=_CLOSE))
                return
            if request is None:
                return
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
            await self._send(conn, writer, response)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
        loop = asyncio.get_running_loop()
        head: h11.Request | None = None
        body = bytearray()
        began: float | None = None  # the first byte of this request
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if began is None and conn.trailing_data[0]:
                    began = loop.time()  # a pipelined request already in h11's buffer
                if began is None:
                    wait, what = self._limits.idle_timeout_s, None
                elif head is None:
                    wait, what = began + self._limits.header_timeout_s - loop.time(), "headers"
                else:
                    wait, what = began + self._limits.request_timeout_s - loop.time(), "request"
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        data = await reader.read(65536)
                except TimeoutError:
                    if what is None:
                        return None  # idle keep-alive connection: close it quietly
                    limit = self._limits.header_timeout_s if what == "headers" else self._limits.request_timeout_s
                    raise _TooSlow(f"the {what} did not arrive within {limit:g}s") from None
                if began is None and data:
                    began = loop.time()
                conn.receive_data(data)
                if not data and head is None:
                    return None
                continue
            if isinstance(event, h11.Request):
                head = event
                length = dict(event.headers).get(b"content-length")
                if length is not None and length.isdigit() and int(length) > self._limits.max_body:
                    raise _BodyTooLarge  # said up front: no need to read it
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self._limits.max_body:
                    raise _BodyTooLarge
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
                return Request(head.method.decode("ascii"), head.target.decode("latin-1"), headers, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        """Read and drop what the client still sends (bounded), so it reads our answer, not a reset."""
        dropped = 0
        with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError):
            async with asyncio.timeout(self._limits.request_timeout_s):
                while dropped < _DRAIN_LIMIT:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    dropped += len(chunk)

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, response: Response) -> None:
        headers = [("content-type", response.content_type), ("content-length", str(len(response.body)))]
        headers += list(response.headers.items())
        writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
        writer.write(conn.send(h11.Data(data=response.body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()


_CLOSE = {"connection": "close"}  # a connection we answer this way is not reused by the client


class _BodyTooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


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
