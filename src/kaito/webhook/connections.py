"""The one HTTP/1.1 connection server (h11 on asyncio streams) under our hand-written servers.

Why by hand: the admission webhook runs inside the operator's event loop (it reads ConfigMaps through
the async `Cluster`) and the slim operator image, and the InferenceSet gateway inside `kaito up`;
neither has an ASGI server (uvicorn and starlette belong to the runtime profile). h11 — in the base
profile through httpx — parses HTTP/1.1 correctly; this module moves bytes between the sockets and
h11, keeps connections alive, and refuses, before any handler sees a request, what a hostile or
broken client sends (`ReadLimits`), each refusal with `connection: close`:
- a body over `max_body` gets a 413 as soon as its Content-Length (or its count) says so; with
  `drain_refused_body` the rest is then read and dropped (bounded) so the client reads the 413
  instead of a connection reset;
- a head over `max_header_bytes` gets a 431 (h11 bounds a head still arriving; with
  `count_whole_head` one that arrived whole is counted too);
- headers not complete within `header_timeout_s` of the request's first byte, or the whole request
  not within `request_timeout_s` (a client sending a byte every few seconds), get a 408; a
  kept-alive connection idle for `idle_timeout_s` is closed quietly;
- malformed HTTP gets h11's status for it (or `protocol_error_status`).

Two layers answer the requests (`_answer`) and word the errors (`_error_body`):
`kaito.webhook.http` (webhook and probes: whole responses, TLS, JSON depth) and
`kaito.operator.serving.front` (the gateway: streamed responses through `Responder`, cancelled when
the client hangs up). It lives in `webhook` because the operator room may import the webhook room,
never the reverse. Every connection runs on its own task; `stop` cancels them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import h11

_DRAIN_LIMIT = 64 * 1024 * 1024  # what is read and dropped after a 413 at most
_STOP_WAIT_S = 5.0  # how long `stop` waits for cancelled connections to close


@dataclass(frozen=True, kw_only=True)
class ReadLimits:
    """What the connection loop enforces while reading a request (see the module docstring)."""

    max_body: int
    header_timeout_s: float
    request_timeout_s: float
    idle_timeout_s: float
    max_header_bytes: int = 64 * 1024
    count_whole_head: bool = True
    protocol_error_status: int | None = None  # None: the status h11 hints (400, 431, 501)
    drain_refused_body: bool = False


class Responder:
    """Sends one response: `start`, then `write` any number of times, then `end` (or `send` it whole)."""

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter) -> None:
        self._conn = conn
        self._writer = writer
        self.started = False
        self.ended = False
        self.status: int | None = None

    async def start(self, status: int, headers: Sequence[tuple[str, str]]) -> None:
        self.started = True
        self.status = status
        self._writer.write(self._conn.send(h11.Response(status_code=status, headers=list(headers))))
        await self._writer.drain()

    async def write(self, data: bytes) -> None:
        if data:
            self._writer.write(self._conn.send(h11.Data(data=data)))
            await self._writer.drain()

    async def end(self) -> None:
        self._writer.write(self._conn.send(h11.EndOfMessage()))
        self.ended = True
        await self._writer.drain()

    async def send(self, status: int, body: bytes, content_type: str = "application/json",
                   headers: Sequence[tuple[str, str]] = ()) -> None:
        """A whole response in one go."""
        await self.start(status, [("content-type", content_type), ("content-length", str(len(body))),
                                  *headers])
        await self.write(body)
        await self.end()


class ConnectionServer:
    """Serves HTTP/1.1 on host:port, with TLS when `ssl_context` is given; `port=0` picks a free one.

    A subclass implements `_answer` (one request, read whole, within the limits) and `_error_body`."""

    def __init__(self, host: str, port: int, read_limits: ReadLimits,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._host = host
        self._port = port
        self._read_limits = read_limits
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
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_WAIT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), timeout=_STOP_WAIT_S)
        self._server = None

    async def _answer(self, head: h11.Request, body: bytes, conn: h11.Connection,
                      reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; True when the response was completed (the connection may be reused)."""
        raise NotImplementedError

    def _error_body(self, status: int, message: str) -> bytes:
        """The body of a refusal, in the dialect the clients of this server read."""
        raise NotImplementedError

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError, h11.LocalProtocolError,
                asyncio.CancelledError):
            pass  # the client went away or spoke no TLS, or we are stopping: nothing to answer
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits = self._read_limits
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        while True:
            try:
                request = await self._read_request(conn, reader)
            except h11.RemoteProtocolError as exc:
                status = limits.protocol_error_status or exc.error_status_hint
                await self._refuse(conn, writer, status, f"bad HTTP request: {exc}")
                return
            except _Refused as exc:
                await self._refuse(conn, writer, exc.status, exc.message)
                if exc.status == 413 and limits.drain_refused_body:
                    await self._drain(reader)  # until the client, told to close, does
                return
            if request is None:
                return
            head, body = request
            if not await self._answer(head, body, conn, reader, writer):
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader
                            ) -> tuple[h11.Request, bytes] | None:
        """The next request, head and whole body; None when the client closed or idled out."""
        limits = self._read_limits
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
                    wait = limits.idle_timeout_s
                elif head is None:
                    wait = began + limits.header_timeout_s - loop.time()
                else:
                    wait = began + limits.request_timeout_s - loop.time()
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        data = await reader.read(65536)
                except TimeoutError:
                    if began is None:
                        return None  # idle keep-alive connection: close it quietly
                    if head is None:
                        raise _Refused(408, f"the headers did not arrive within {limits.header_timeout_s:g}s") from None
                    raise _Refused(408, f"the request did not arrive within {limits.request_timeout_s:g}s") from None
                if began is None and data:
                    began = loop.time()
                conn.receive_data(data)
                if not data and head is None:
                    return None
                continue
            if isinstance(event, h11.Request):
                head = event
                # h11 bounds only a head it is still waiting for; one that arrived whole is counted here
                size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
                if limits.count_whole_head and size > limits.max_header_bytes:
                    raise _Refused(431, f"request headers too large: the limit is {limits.max_header_bytes} bytes")
                length = dict(event.headers).get(b"content-length")
                if length is not None and length.isdigit() and int(length) > limits.max_body:
                    raise _Refused(413, f"request body too large: the limit is {limits.max_body} bytes")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > limits.max_body:
                    raise _Refused(413, f"request body too large: the limit is {limits.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return head, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _refuse(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return  # a response is already under way: closing is all that is left
        with contextlib.suppress(ConnectionError, h11.LocalProtocolError):
            await Responder(conn, writer).send(status, self._error_body(status, message),
                                               headers=[("connection", "close")])

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        """Read and drop what the client still sends (bounded), so it reads our answer, not a reset."""
        dropped = 0
        with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError):
            async with asyncio.timeout(self._read_limits.request_timeout_s):
                while dropped < _DRAIN_LIMIT:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    dropped += len(chunk)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
