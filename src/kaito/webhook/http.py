"""A small asyncio HTTPS server for the admission webhook, built on h11.

The webhook must run inside the operator's event loop (it reads ConfigMaps through the async
`Cluster`) and inside the slim operator image, which has no ASGI server (uvicorn and starlette
belong to the runtime profile). h11 — already in the base profile through httpx — parses HTTP/1.1
correctly, so this module only moves bytes between a socket and one async handler. Bodies are
capped, malformed requests get a 400, and a failing handler gets a 500 without killing the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11

log = logging.getLogger(__name__)

# An AdmissionReview of a Workspace is a few KiB; the API server caps requests at 3 MiB.
MAX_BODY = 3 * 1024 * 1024
READ_TIMEOUT = 30.0


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

    def __init__(self, handler: Handler, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
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
                    await self._send(conn, writer, Response(400, _error_body(f"bad HTTP request: {exc}")))
                return
            except _BodyTooLarge:
                await self._send(conn, writer, Response(413, _error_body("request body too large")))
                return
            if request is None:
                return
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
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(65536), timeout=READ_TIMEOUT)
                conn.receive_data(data)
                if not data and head is None:
                    return None
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise _BodyTooLarge
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
                return Request(head.method.decode("ascii"), head.target.decode("latin-1"), headers, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, response: Response) -> None:
        headers = [("content-type", response.content_type), ("content-length", str(len(response.body)))]
        headers += list(response.headers.items())
        writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
        writer.write(conn.send(h11.Data(data=response.body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()


class _BodyTooLarge(Exception):
    pass


def _error_body(message: str) -> bytes:
    import json

    return json.dumps({"error": message}).encode()
