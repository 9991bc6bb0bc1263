"""The gateway's HTTP/1.1 server: h11 on asyncio streams, with streamed responses.

The base profile has no ASGI server (uvicorn belongs to the runtime profile), and the webhook's
server (`kaito.webhook.http`) answers whole bodies only. This one hands the handler a `Responder`
that sends the status line at once and each chunk as it comes (SSE passes through unbuffered), and
it watches the client's socket while the handler runs: when the client hangs up, the handler's task
is cancelled, which closes the request it has open upstream.

Limits, answered before any handler runs: a body over `max_body` gets a 413 (said by its
Content-Length, or counted); headers over `max_header_bytes` a 431; headers not complete within
`header_timeout_s` or a body not complete within `body_timeout_s` of its first byte a 408; a
kept-alive connection idle for `idle_timeout_s` is closed quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import h11

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class FrontLimits:
    max_body: int = 16 * 1024 * 1024  # a long chat history with a few images fits
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 30.0
    body_timeout_s: float = 120.0
    idle_timeout_s: float = 120.0


@dataclass(frozen=True, kw_only=True)
class Request:
    method: str
    target: str  # path and query, as sent
    headers: tuple[tuple[str, str], ...]  # names lower-case, in order
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Responder:
    """Sends one response: `start`, then `write` any number of times, then `end`."""

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


Handler = Callable[[Request, Responder], Awaitable[None]]


def error_body(message: str, kind: str = "server_error", code: int | None = None) -> bytes:
    """An OpenAI-style error document: what the `openai` client reads into its exception."""
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


class FrontServer:
    """Serves `handler` on host:port (`port=0` picks a free one; `port` says which)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0,
                 limits: FrontLimits = FrontLimits()) -> None:  # noqa: B008 - frozen, shared safely
        self._handler = handler
        self._host = host
        self._port = port
        self._limits = limits
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self._host, self._port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), timeout=5)
        self._server = None

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.CancelledError, h11.LocalProtocolError):
            pass  # the client went away, or we are stopping
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._limits.max_header_bytes)
        while True:
            try:
                request = await self._read_request(conn, reader)
            except h11.RemoteProtocolError as exc:
                await self._refuse(conn, writer, exc.error_status_hint, f"bad HTTP request: {exc}")
                return
            except _Refused as exc:
                await self._refuse(conn, writer, exc.status, exc.message)
                return
            if request is None:
                return
            responder = Responder(conn, writer)
            if not await self._run_handler(request, responder, conn, reader):
                return  # the client hung up, or the response could not be finished
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _run_handler(self, request: Request, responder: Responder, conn: h11.Connection,
                           reader: asyncio.StreamReader) -> bool:
        """Run the handler while watching the socket; True when the response was completed."""
        work = asyncio.create_task(self._handler(request, responder))
        watch = asyncio.create_task(_wait_for_hangup(reader, conn))
        try:
            done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is stopping: take both down with it
            work.cancel()
            watch.cancel()
            await asyncio.gather(work, watch, return_exceptions=True)
            raise
        if work not in done:  # the client is gone: stop the work (it closes what it has upstream)
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            return False
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        try:
            work.result()
        except (ConnectionError, h11.LocalProtocolError):
            return False
        except Abort:
            return False  # the handler chose to cut the response short (upstream broke mid-stream)
        except Exception:  # a bug costs one request, never the server
            log.exception("gateway handler failed on %s %s", request.method, request.path)
            if not responder.started:
                with contextlib.suppress(ConnectionError, h11.LocalProtocolError):
                    await responder.send(500, error_body("internal gateway error"))
                return responder.ended
            return False
        if not responder.ended:
            log.error("gateway handler returned without a full response on %s", request.path)
            return False
        return True

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
        loop = asyncio.get_running_loop()
        head: h11.Request | None = None
        body = bytearray()
        began: float | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if began is None and conn.trailing_data[0]:
                    began = loop.time()
                if began is None:
                    wait, what = self._limits.idle_timeout_s, None
                elif head is None:
                    wait, what = began + self._limits.header_timeout_s - loop.time(), "headers"
                else:
                    wait, what = began + self._limits.body_timeout_s - loop.time(), "body"
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        data = await reader.read(65536)
                except TimeoutError:
                    if what is None:
                        return None
                    raise _Refused(408, f"the request {what} did not arrive in time") from None
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
                if size > self._limits.max_header_bytes:
                    raise _Refused(431, f"request headers too large: the limit is {self._limits.max_header_bytes} bytes")
                length = dict(event.headers).get(b"content-length")
                if length is not None and length.isdigit() and int(length) > self._limits.max_body:
                    raise _Refused(413, f"request body too large: the limit is {self._limits.max_body} bytes")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self._limits.max_body:
                    raise _Refused(413, f"request body too large: the limit is {self._limits.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers)
                return Request(method=head.method.decode("ascii"), target=head.target.decode("latin-1"),
                               headers=headers, body=bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _refuse(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int, message: str) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with contextlib.suppress(ConnectionError, h11.LocalProtocolError):
            await Responder(conn, writer).send(status, error_body(message, "invalid_request_error", status),
                                               headers=[("connection", "close")])


async def _wait_for_hangup(reader: asyncio.StreamReader, conn: h11.Connection) -> None:
    """Returns when the client closes its side; bytes it sends meanwhile (a pipelined request) are
    kept for the next cycle."""
    while True:
        data = await reader.read(65536)
        if not data:
            return
        conn.receive_data(data)


class Abort(Exception):
    """Raised by a handler to drop the connection mid-response (the client must not mistake a
    broken stream for a complete one)."""


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
