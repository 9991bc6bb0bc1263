"""`kaito.runtime.limits` on a real uvicorn (httptools and h11) on 127.0.0.1, with short deadlines:
every hostile request gets its 4xx (408, 413, 431, 400) and its connection closed, while another
client is served at the same time; a well-behaved request reaches the app with its exact body."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import uvicorn

from kaito.runtime import limits

LIMITS = limits.Limits(max_body=1024, max_depth=20, header_timeout_s=0.5, body_timeout_s=0.5,
                       max_header_bytes=4096)


async def echo(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            event = (await receive())["type"]
            await send({"type": f"{event}.complete"})
            if event == "lifespan.shutdown":
                return
    message = await receive()
    body = json.dumps({"got": len(message.get("body", b"")), "more": message.get("more_body", False)}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module", params=["httptools", "h11"])
def address(request):
    if request.param == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base
    app = limits.RequestLimits(echo, limits=LIMITS)
    options = {**limits.uvicorn_options(LIMITS), "http": limits.build_protocol(LIMITS, base)}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield server.servers[0].sockets[0].getsockname()[:2]
    server.should_exit = True
    thread.join(10)


def _connect(address) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    return sock


def _answer(sock: socket.socket) -> tuple[int, bytes, bool]:
    """(status, whole answer, whether the server closed the connection after it)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return _status(data), data, True
        if not chunk:
            return _status(data), data, True
        data += chunk
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(body) >= length and b"connection: close" not in head.lower():
                return _status(data), data, False


def _status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def _served(address) -> int:
    with _connect(address) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
        status, data, _ = _answer(sock)
        assert b'"got": 2' in data
        return status


def test_headers_that_never_end_get_408_while_others_are_served(address):
    slow, silent = _connect(address), _connect(address)
    try:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        assert _served(address) == 200  # another client, during the hold
        slow.sendall(b"X-A: 1\r\n")  # a byte now and then does not extend the deadline
        status, data, closed = _answer(slow)
        assert (status, closed) == (408, True) and b"headers did not arrive" in data
        assert _answer(silent)[0] == 408  # a connection that never sends a byte, too
    finally:
        slow.close()
        silent.close()


def test_the_deadline_holds_for_the_next_request_on_a_kept_alive_connection(address):
    with _connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert _answer(sock)[:1] == (200,)
        sock.sendall(b"GET / HTTP/1.1\r\n")
        status, _, closed = _answer(sock)
        assert (status, closed) == (408, True)


def test_headers_too_large_get_431(address):
    with _connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        try:
            for i in range(100):
                sock.sendall(b"X-%d: " % i + b"a" * 1000 + b"\r\n")
        except OSError:
            pass  # closed under us: the answer is already waiting
        status, _, closed = _answer(sock)
    assert status in (431, 400) and closed  # h11 answers its own 400 past its incomplete-event bound
    assert _served(address) == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_too_large_gets_413_and_is_drained(address, chunked):
    body = b"x" * 5000
    with _connect(address) as sock:
        if chunked:
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        else:
            sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + body)
        status, data, closed = _answer(sock)
    assert (status, closed) == (413, True) and b"larger than the 1024 bytes" in data


def test_a_body_sent_too_slowly_gets_408(address):
    with _connect(address) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{")
        assert _served(address) == 200
        status, data, closed = _answer(sock)
    assert (status, closed) == (408, True) and b"body did not arrive" in data


def test_json_nested_too_deep_gets_400_before_any_parser(address):
    deep = b'{"a": ' + b"[" * 200 + b"]" * 200 + b"}"
    in_strings = json.dumps({"a": "[" * 500}).encode()  # brackets in strings do not count
    with _connect(address) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(deep) + deep)
        status, data, _ = _answer(sock)
    assert status == 400 and b"deeper than 20 levels" in data
    with _connect(address) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(in_strings) + in_strings)
        assert _answer(sock)[0] == 200


@pytest.mark.parametrize(("body", "depth"), [(b"", 0), (b"[]", 1), (b'{"a": [{"b": [1]}]}', 4),
                                             (b'"[[[["', 0), (b'["\\"[", {}]', 2), (b"[[[", 3)])
def test_json_depth(body, depth):
    assert limits.json_depth(body) == depth
