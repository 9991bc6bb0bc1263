"""Request limits for the HTTP servers that run in pods: the model server and the RAG service.

A pod's server faces any client that can reach its Service. What uvicorn (0.54) already does, and
what this module adds (measured against uvicorn with httptools and with h11):

| hostile request                         | uvicorn alone                          | here                          |
|-----------------------------------------|----------------------------------------|-------------------------------|
| headers that never end (a byte now and  | held open for ever: `timeout_keep_alive`| 408 and closed after          |
| then, or nothing after the first line)  | starts only after a first response     | `header_timeout_s`            |
| 16 MB of headers                        | httptools: read whole, then served;    | 431 and closed past           |
|                                         | h11: 400 past 16 KiB                   | `max_header_bytes` (both)     |
| a 20 MB body                            | read whole into memory (FastAPI)       | 413 (`max_body`)              |
| a body sent a byte every few seconds    | waited for, for ever                   | 408 after `body_timeout_s`    |
| JSON nested 50,000 deep                 | FastAPI: 400 after the recursion fails | 400 before any parser runs    |
| an idle kept-alive connection           | closed after `timeout_keep_alive` (5 s)| (uvicorn's, kept)             |

The body rules are `RequestLimits`, a pure ASGI middleware (no `BaseHTTPMiddleware`: it passes
`receive` through untouched once the body is read, so routes still see `http.disconnect`). The
header rules must act before any ASGI app is called, so they live in a subclass of uvicorn's own
HTTP protocol, given to `uvicorn.Config` by `uvicorn_options`. Both apps mount the middleware and
both entry points pass the options.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 60.0  # a slow client on a slow link still sends a few MiB in a minute
MAX_HEADER_BYTES = 64 * 1024  # far above any browser's or SDK's headers (nginx's default is 8 KiB per line)
MAX_JSON_DEPTH = 100  # a chat request nests about 6 deep; a tool's JSON schema a few dozen at most
DRAIN_LIMIT = 64 * 1024 * 1024  # read and dropped after a 413, so the client reads the answer, not a reset

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class Limits:
    max_body: int
    max_depth: int = MAX_JSON_DEPTH
    body_timeout_s: float = BODY_TIMEOUT_S
    header_timeout_s: float = HEADER_TIMEOUT_S
    max_header_bytes: int = MAX_HEADER_BYTES


MODEL_SERVER = Limits(max_body=16 * 1024 * 1024)  # a prompt of a million tokens is about 4 MiB of text
RAG_SERVICE = Limits(max_body=64 * 1024 * 1024)  # a batch of documents to index

_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NON_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in `body` (brackets inside strings do not count); linear, no
    recursion, for any bytes (what is not JSON gets some number; the parser later says what is wrong)."""
    if body.count(b"[") + body.count(b"{") == 0:
        return 0
    steps = _JSON_STRING.sub(b"", body).translate(None, _NON_BRACKETS).translate(_STEPS)
    return max(itertools.accumulate(memoryview(steps).cast("b")), default=0)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value
    return None


async def refuse(send: Send, status: int, message: str, *, close: bool = False) -> None:
    """An error answer in the OpenAI shape both apps' clients read (`{"error": {"message": ...}}`)."""
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": status},
                       "detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """Pure ASGI middleware: the body is read first (at most `max_body` bytes, within
    `body_timeout_s`), its JSON depth checked, then handed to the app as one message."""

    def __init__(self, app, *, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        declared = _header(scope, b"content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        if length is not None and length > limits.max_body:
            if _header(scope, b"expect") != b"100-continue" and length <= DRAIN_LIMIT:
                await self._drain(receive)
            await refuse(send, 413, f"the request body ({length} bytes) is larger than the {limits.max_body} "
                                    "bytes this server accepts", close=True)
            return
        try:
            async with asyncio.timeout(limits.body_timeout_s):
                body, complete = await self._read(receive)
        except TimeoutError:
            await refuse(send, 408, f"the request body did not arrive within {limits.body_timeout_s:.0f} s",
                         close=True)
            return
        if body is None:
            return  # the client went away
        if not complete:
            await refuse(send, 413, f"the request body is larger than the {limits.max_body} bytes this server "
                                    "accepts", close=True)
            return
        if limits.max_depth and json_depth(body) > limits.max_depth:
            await refuse(send, 400, f"the JSON body nests deeper than {limits.max_depth} levels")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> tuple[bytes | None, bool]:
        """(the body, whether it was read whole within `max_body`); (None, False): disconnected."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                return b"", False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), True

    async def _drain(self, receive: Receive, seen: int = 0) -> None:
        """Read and drop the rest of a refused body (up to `DRAIN_LIMIT`, within the body deadline)."""
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                while seen <= DRAIN_LIMIT:
                    message = await receive()
                    seen += len(message.get("body", b""))
                    if message["type"] == "http.disconnect" or not message.get("more_body", False):
                        return
        except TimeoutError:
            return


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app: the whole body once, then the server's own (disconnects)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# -- header limits: in uvicorn's protocol, before any app runs -------------------------------------

def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": {"message": message, "code": status}, "detail": message}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request already answered."""


def build_protocol(limits: Limits, base: type | None = None) -> type:
    """uvicorn's HTTP protocol (`base`, default: httptools' when installed, else h11's) with a
    deadline on each request's headers and, for httptools, a bound on their size."""
    if base is None:
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
        except ImportError:
            from uvicorn.protocols.http.h11_impl import H11Protocol as base

    class Guarded(base):  # type: ignore[misc, valid-type]
        _kaito_timer: asyncio.TimerHandle | None = None
        _kaito_refused = False
        _kaito_head = 0

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._kaito_arm()

        def connection_lost(self, exc) -> None:
            self._kaito_disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._kaito_refused:
                return  # answered and closing: nothing more is parsed
            if self._kaito_timer is None and _waiting_for_request(self):
                self._kaito_arm()  # the first bytes of the next request on a kept-alive connection
            super().data_received(data)
            if _headers_done(self):
                self._kaito_disarm()

        def send_400_response(self, msg: str) -> None:
            if not self._kaito_refused:  # a refusal of ours already answered this request
                super().send_400_response(msg)

        # httptools' callbacks (h11 has none of these; it bounds header size itself)
        def on_message_begin(self) -> None:
            self._kaito_head = 0
            if self._kaito_timer is None:
                self._kaito_arm()
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._kaito_count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._kaito_count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._kaito_disarm()
            super().on_headers_complete()

        def _kaito_count(self, size: int) -> None:
            self._kaito_head += size
            if self._kaito_head > limits.max_header_bytes:
                self._kaito_refuse(431, "Request Header Fields Too Large",
                                   f"the request headers are larger than {limits.max_header_bytes} bytes")
                raise _Refused

        def _kaito_arm(self) -> None:
            self._kaito_disarm()
            self._kaito_timer = asyncio.get_running_loop().call_later(limits.header_timeout_s, self._kaito_timeout)

        def _kaito_disarm(self) -> None:
            if self._kaito_timer is not None:
                self._kaito_timer.cancel()
                self._kaito_timer = None

        def _kaito_timeout(self) -> None:
            self._kaito_timer = None
            if not _headers_done(self):
                self._kaito_refuse(408, "Request Timeout",
                                   f"the request headers did not arrive within {limits.header_timeout_s:.0f} s")

        def _kaito_refuse(self, status: int, reason: str, message: str) -> None:
            self._kaito_refused = True
            self._kaito_disarm()
            if not self.transport.is_closing():
                self.transport.write(_raw_response(status, reason, message))
                self.transport.close()

    Guarded.__name__ = Guarded.__qualname__ = f"Limited{base.__name__}"
    return Guarded


def _headers_done(protocol) -> bool:
    """Whether the request in progress has all its headers (a cycle was started for it)."""
    conn = getattr(protocol, "conn", None)
    if conn is not None:  # h11: the peer's state leaves IDLE once a request's head is parsed
        import h11

        return conn.their_state is not h11.IDLE
    cycle = getattr(protocol, "cycle", None)
    return cycle is not None and not cycle.response_complete


def _waiting_for_request(protocol) -> bool:
    conn = getattr(protocol, "conn", None)
    if conn is not None:
        import h11

        return conn.their_state is h11.IDLE
    cycle = getattr(protocol, "cycle", None)
    return cycle is None or cycle.response_complete


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config` that apply `limits`' header rules."""
    return {"http": build_protocol(limits), "h11_max_incomplete_event_size": limits.max_header_bytes}
