"""The webhook's HTTPS server against hostile clients, over real TLS on 127.0.0.1.

Each limit is answered with a 4xx (413 for a huge body, 400 for deep JSON or an unknown
operation, 408 and a closed connection for a client too slow to finish its request), and other
clients are served meanwhile. The admission-level answers go through `WebhookServer` with its
default limits; the deadlines are checked on `HttpServer` with short ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl

import httpx
import pytest
import pytest_asyncio

from kaito.webhook import certs, http, server, tls
from tests.integration.webhook.test_webhook_https import ConfigMapsOnly, review
from tests.unit.api.factories import inference_ws
from tests.unit.api.fake_facts import FakeFacts


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    bundle = certs.build_cert_bundle(["localhost"], ip_addresses=["127.0.0.1"])
    tls.write_cert_dir(bundle, folder)
    return folder, ssl.create_default_context(cadata=bundle.ca_cert.decode())


@pytest_asyncio.fixture(loop_scope="function")
async def webhook(cert_dir):
    folder, client_ctx = cert_dir
    cfg = server.WebhookConfig(host="127.0.0.1", port=0, cert_dir=folder, release_namespace="kaito-system")
    srv = server.WebhookServer(ConfigMapsOnly(), FakeFacts(), cfg)
    await srv.start()
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{srv.port}", verify=client_ctx, timeout=60) as client:
        yield client
    await srv.stop()


async def _still_serves(client: httpx.AsyncClient) -> None:
    ok = await client.post(server.VALIDATE_PATH, json=review("CREATE", inference_ws()))
    assert ok.status_code == 200 and ok.json()["response"]["allowed"] is True


async def test_deeply_nested_json_is_a_400_not_a_500(webhook):
    deep = b"[" * 50_000 + b"]" * 50_000
    body = json.dumps(review("CREATE", inference_ws())).encode().replace(b'"object": {', b'"deep": ' + deep + b', "object": {')
    resp = await webhook.post(server.VALIDATE_PATH, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "nested deeper than" in resp.json()["error"]
    # Brackets inside strings are text, not nesting.
    ws = inference_ws()
    ws["metadata"]["annotations"] = {"note": "[" * 50_000}
    resp = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", ws))
    assert resp.status_code == 200
    await _still_serves(webhook)


async def test_a_huge_body_is_answered_413_not_reset(webhook):
    resp = await webhook.post(server.VALIDATE_PATH, content=b"x" * (20 * 1024 * 1024),
                              headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "too large" in resp.json()["error"]
    await _still_serves(webhook)


@pytest.mark.parametrize("operation", ["PATCH", "create", "X" * 1000])
async def test_an_unknown_operation_is_refused(webhook, operation):
    resp = await webhook.post(server.VALIDATE_PATH, json=review(operation, inference_ws()))
    assert resp.status_code == 400 and "is not one of CREATE, UPDATE, DELETE, CONNECT" in resp.json()["error"]
    assert len(resp.json()["error"]) < 200


# -- deadlines, on the HTTP server itself with short limits ---------------------------------------

LIMITS = http.Limits(header_timeout_s=2.0, request_timeout_s=3.0, idle_timeout_s=1.0)


@pytest_asyncio.fixture(loop_scope="function")
async def quick(cert_dir):
    folder, client_ctx = cert_dir

    async def echo(request: http.Request) -> http.Response:
        return http.Response(200, json.dumps({"got": len(request.body)}).encode())

    srv = http.HttpServer(echo, "127.0.0.1", 0, tls.build_server_context(folder), limits=LIMITS)
    await srv.start()
    yield srv.port, client_ctx
    await srv.stop()


async def _slow_client(port: int, ctx: ssl.SSLContext, head: bytes, trickle: bytes,
                       connected: asyncio.Event) -> tuple[bytes, int]:
    """Send `head`, then `trickle` one byte every 0.25 s; returns (what the server said, bytes trickled)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
    writer.write(head)
    await writer.drain()
    connected.set()
    sent = 0
    answer = asyncio.create_task(reader.read())  # everything until the server closes
    try:
        for byte in trickle:
            if answer.done():
                break
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            sent += 1
            await asyncio.wait([answer], timeout=0.25)
        return await asyncio.wait_for(answer, 30), sent
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def _normal_clients(port: int, ctx: ssl.SSLContext, slow: asyncio.Task) -> int:
    """Requests from a well-behaved client while the slow one holds its connection; how many got a 200."""
    served = 0
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=ctx) as client:
        for i in range(3):
            resp = await client.post("/", content=b"{}")
            served += resp.status_code == 200 and resp.json() == {"got": 2}
            assert not slow.done(), f"request {i} was served only after the slow client was cut off"
    return served


async def test_a_client_sending_headers_a_byte_at_a_time_is_cut_off_while_others_are_served(quick):
    port, ctx = quick
    trickle = b"X-Slow: " + b"a" * 60 + b"\r\n\r\n"  # would take 17 s at this pace
    connected = asyncio.Event()
    slow = asyncio.create_task(_slow_client(port, ctx, b"POST / HTTP/1.1\r\nHost: x\r\n", trickle, connected))
    await connected.wait()
    assert await _normal_clients(port, ctx, slow) == 3
    answer, sent = await slow
    assert answer.startswith(b"HTTP/1.1 408 ") and b"headers did not arrive within 2s" in answer
    assert sent < len(trickle)  # cut off, not allowed to finish


async def test_a_body_sent_a_byte_at_a_time_is_cut_off_at_the_request_deadline(quick):
    port, ctx = quick
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n"
    connected = asyncio.Event()
    slow = asyncio.create_task(_slow_client(port, ctx, head, b"1" * 60, connected))
    await connected.wait()
    assert await _normal_clients(port, ctx, slow) == 3
    answer, sent = await slow
    assert answer.startswith(b"HTTP/1.1 408 ") and b"request did not arrive within 3s" in answer
    assert sent < 60


async def test_an_idle_kept_alive_connection_is_closed(quick):
    port, ctx = quick
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await reader.readuntil(b'{"got": 0}')
    assert first.startswith(b"HTTP/1.1 200 ")
    assert await asyncio.wait_for(reader.read(), 30) == b""  # then nothing more, and closed
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()
