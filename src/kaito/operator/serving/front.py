"""The gateway's HTTP/1.1 front: streamed responses, cancelled when the client hangs up.

The base profile has no ASGI server (uvicorn belongs to the runtime profile). The connection
handling (h11, keep-alive, reading a request within its limits, refusing with a 4xx) is
`kaito.webhook.connections`, shared with the webhook's server; this layer hands the handler a
`Request` and a `Responder` that sends the status line at once and each chunk as it comes (SSE passes
through unbuffered), and it watches the client's socket while the handler runs: when the client
hangs up, the handler's task is cancelled, which closes the request it has open upstream.

Limits (`FrontLimits`), answered before any handler runs: a body over `max_body` gets a 413 (said by
its Content-Length, or counted); headers over `max_header_bytes` a 431; headers not complete within
`header_timeout_s` or a body not complete within `body_timeout_s` of its first byte a 408; a
kept-alive connection idle for `idle_timeout_s` is closed quietly. Errors are OpenAI-style documents
(`error_body`), which the `openai` client reads into its exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11

from kaito.webhook.connections import ConnectionServer, ReadLimits, Responder

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


Handler = Callable[[Request, Responder], Awaitable[None]]


def error_body(message: str, kind: str = "server_error", code: int | None = None) -> bytes:
    """An OpenAI-style error document: what the `openai` client reads into its exception."""
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


class FrontServer(ConnectionServer):
    """Serves `handler` on host:port (`port=0` picks a free one; `port` says which)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0,
                 limits: FrontLimits = FrontLimits()) -> None:  # noqa: B008 - frozen, shared safely
        super().__init__(host, port, ReadLimits(
            max_body=limits.max_body, max_header_bytes=limits.max_header_bytes,
            header_timeout_s=limits.header_timeout_s, request_timeout_s=limits.body_timeout_s,
            idle_timeout_s=limits.idle_timeout_s))
        self._handler = handler

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def _answer(self, head: h11.Request, body: bytes, conn: h11.Connection,
                      reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers)
        request = Request(method=head.method.decode("ascii"), target=head.target.decode("latin-1"),
                          headers=headers, body=body)
        return await self._run_handler(request, Responder(conn, writer), conn, reader)

    def _error_body(self, status: int, message: str) -> bytes:
        return error_body(message, "invalid_request_error", status)

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
