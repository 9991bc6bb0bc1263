"""The model server's request limits (`kaito.runtime.limits`, mounted by the app, given to uvicorn by
the entry points): a 20 MB body is 413, JSON nested 50,000 deep is 400, 100 KB of headers is 431,
all answered while another client is served; see tests/integration/runtime for the deadlines."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

import httpx


def _address(server) -> tuple[str, int]:
    url = urlsplit(server.base_url)
    return url.hostname, url.port


def _raw(server, request: bytes) -> bytes:
    with socket.create_connection(_address(server), timeout=60) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass  # answered and closed while we were still sending
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_hostile_requests_get_4xx_while_another_client_is_served(server):
    served: list[int] = []
    stop = threading.Event()

    def other_client() -> None:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            while not stop.is_set():
                served.append(client.get("/health").status_code)

    thread = threading.Thread(target=other_client, daemon=True)
    thread.start()
    try:
        big = httpx.post(f"{server.base_url}/v1/chat/completions", content=b"x" * (20 * 1024 * 1024),
                         headers={"content-type": "application/json"}, timeout=120)
        assert big.status_code == 413 and "larger than" in big.json()["error"]["message"]

        deep = b'{"model": "tiny", "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
        nested = httpx.post(f"{server.base_url}/v1/chat/completions", content=deep,
                            headers={"content-type": "application/json"}, timeout=60)
        assert nested.status_code == 400 and "nests deeper than" in nested.json()["error"]["message"]

        headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(100))
        answer = _raw(server, b"GET /health HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 431 ")
    finally:
        stop.set()
        thread.join(60)
    assert served and set(served) == {200}


def test_the_server_runs_on_the_limited_protocol(server):
    config = server._server.config  # what `start_server` (and `python -m kaito.runtime.inference`) gave uvicorn
    assert config.http.__name__.startswith("Limited")
    assert config.h11_max_incomplete_event_size == 64 * 1024
