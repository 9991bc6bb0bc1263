"""One InferenceSet's local endpoint: spreads requests over its ready replicas.

What the Gateway API Inference Extension does on a cluster, in the small (placement rules in
`balance`):
- `/v1/models` is answered here with the set's one model name; `/metrics` is the gateway's own;
  `/healthz` is 200 while a replica is ready (503 otherwise). Everything else goes to a replica.
- A request that fails before anything reached the client (connection refused or reset, timeout
  before the response head, 500/502/503/504) ejects its replica and goes to another, at most
  `max_attempts` failures in all; a 429 tries the next replica without ejecting. When every
  replica answered 429 the client gets 429 with the largest Retry-After they gave. Once the
  response head is sent nothing is retried; a body that breaks midway drops the connection, so
  the client sees a broken response, never a short complete one.
- The body is streamed through as it arrives (SSE included): no buffering.
- With no ready replica the request is held (`held`) while the set comes up: the `Waker` (the
  autoscaler, when the set may scale to zero) is asked for one, and the request goes on as soon as
  a replica is ready, or gets 503 with Retry-After after `wake_timeout_s`. With no replica at all
  and no waker, 503 at once.
- A client that hangs up cancels its request, which closes the upstream connection (`front`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from kaito.operator.serving import balance
from kaito.operator.serving.front import Abort, FrontLimits, FrontServer, Request, Responder, error_body
from kaito.operator.serving.gateway_metrics import GatewayMetrics
from kaito.operator.serving.replicas import Demand, Replica, ReplicaPool, Waker

log = logging.getLogger("kaito.gateway")

RETRIED_STATUSES = frozenset({500, 502, 503, 504})
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
                         "expect", "proxy-connection"})
_ERROR_BODY_LIMIT = 64 * 1024  # what is kept of a failed replica's answer, to pass on


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    model_name: str  # the set's name: the children serve it as `--served-model-name`
    host: str = "127.0.0.1"
    port: int = 0
    prefix_chars: int = balance.DEFAULT_PREFIX_CHARS
    load_factor: float = balance.DEFAULT_LOAD_FACTOR
    max_attempts: int = 3  # failed replicas per request (429s not counted)
    max_in_flight: int = 1024  # beyond it: 429 at once
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 600.0  # for the response head, then between two chunks of its body
    ejection_base_s: float = 2.0
    ejection_max_s: float = 60.0
    wake_timeout_s: float = 300.0  # a model server loads in seconds to minutes
    retry_after_s: int = 10
    limits: FrontLimits = field(default_factory=FrontLimits)


@dataclass(frozen=True, kw_only=True)
class _Failed:
    """A replica's answer that was not passed on (yet)."""

    status: int | None  # None: not reached, or no response head in time
    body: bytes = b""
    content_type: str = "application/json"
    retry_after: str | None = None
    reason: str = ""


class Gateway:
    def __init__(self, settings: GatewaySettings, pool: ReplicaPool, *, waker: Waker | None = None,
                 clock: Callable[[], float] = time.monotonic, metrics: GatewayMetrics | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.waker = waker
        self.clock = clock
        self.metrics = metrics or GatewayMetrics()
        self.ejections = balance.Ejections(base_s=settings.ejection_base_s, max_s=settings.ejection_max_s,
                                           clock=clock)
        self.outstanding: dict[str, int] = {}
        self._in_flight = 0
        self._held = 0
        self._last_request_at: float | None = None
        self._turn = 0
        self._created = int(time.time())
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._front = FrontServer(self.handle, settings.host, settings.port, settings.limits)
        self.metrics.watch_backends(self._outstanding_view, self._ejected_view)

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self._front.url

    async def start(self) -> None:
        s = self.settings
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=s.connect_timeout_s, read=s.read_timeout_s, write=60.0, pool=s.wake_timeout_s),
            limits=httpx.Limits(max_connections=s.max_in_flight, max_keepalive_connections=64),
            transport=self._transport, follow_redirects=False, trust_env=False)
        await self._front.start()
        log.info("gateway for %s on %s", s.model_name, self.url)

    async def stop(self) -> None:
        await self._front.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def demand(self) -> Demand:
        """What the autoscaler reads each tick."""
        return Demand(in_flight=self._in_flight, held=self._held, last_request_at=self._last_request_at)

    # --- routes --------------------------------------------------------------------------------
    async def handle(self, request: Request, responder: Responder) -> None:
        path = request.path
        if path in ("/v1/models", "/metrics", "/healthz"):  # answered here, not counted as requests
            if request.method != "GET":
                await responder.send(405, error_body(f"{path} answers GET only", "invalid_request_error"),
                                     headers=[("allow", "GET")])
            elif path == "/v1/models":
                await responder.send(200, json.dumps(self._model_list()).encode())
            elif path == "/metrics":
                await responder.send(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
            else:
                ready = len(self.pool.ready())
                await responder.send(200 if ready else 503, json.dumps({"ready_replicas": ready}).encode())
            return
        await self._proxy(request, responder)

    def _model_list(self) -> dict:
        name = self.settings.model_name
        return {"object": "list", "data": [{"id": name, "object": "model", "created": self._created,
                                            "owned_by": "kaito", "root": name, "parent": None}]}

    # --- proxying ------------------------------------------------------------------------------
    async def _proxy(self, request: Request, responder: Responder) -> None:
        if self._in_flight + self._held >= self.settings.max_in_flight:
            await self._answer(responder, 429, error_body("the gateway is at its limit of requests in flight",
                                                          "rate_limit_error", 429),
                               headers=[("retry-after", "1")])
            return
        self._last_request_at = self.clock()
        try:
            if not await self._wait_for_replica(responder):
                return
            self._in_flight += 1
            try:
                await self._forward(request, responder)
            finally:
                self._in_flight -= 1
        except asyncio.CancelledError:
            self.metrics.client_gone.inc()
            raise

    async def _wait_for_replica(self, responder: Responder) -> bool:
        """True when a replica is ready (at once, or after holding the request); else answered 503."""
        if self.pool.ready():
            return True
        s = self.settings
        retry = [("retry-after", str(s.retry_after_s))]
        if self.waker is None and not self.pool.all():
            await self._answer(responder, 503, error_body(f"no replica of {s.model_name} is running", "server_error",
                                                          503), headers=retry)
            return False
        self._held += 1
        self.metrics.held.inc()
        try:
            if self.waker is not None:
                self.metrics.wakeups.inc()
                self.waker.wake()
            ready = await self.pool.wait_ready(s.wake_timeout_s)
        finally:
            self._held -= 1
            self.metrics.held.dec()
        if not ready:
            await self._answer(responder, 503, error_body(
                f"no replica of {s.model_name} became ready within {s.wake_timeout_s:g}s; try again later",
                "server_error", 503), headers=retry)
        return ready

    async def _forward(self, request: Request, responder: Responder) -> None:
        key = balance.prefix_key(request.body, self.settings.prefix_chars) if request.method == "POST" else None
        self.ejections.forget_others([r.name for r in self.pool.all()])
        tried: set[str] = set()
        answers: list[_Failed] = []
        failures = 0
        while failures < self.settings.max_attempts:
            names = [r.name for r in self.pool.ready() if r.name not in tried]
            if not names:
                break
            choice = balance.pick(self.ejections.usable(names), self.outstanding, key,
                                  load_factor=self.settings.load_factor, turn=self._turn)
            self._turn += 1
            replica = self.pool.get(choice.name)
            if replica is None:  # pragma: no cover - the pool is read on this loop, between awaits only
                break
            if tried:
                self.metrics.retries.inc()
            tried.add(replica.name)
            if key is not None:
                self.metrics.affinity.labels("hit" if choice.affinity else "load").inc()
            failed = await self._attempt(replica, request, responder)
            if failed is None:
                return
            answers.append(failed)
            if failed.status != 429:
                failures += 1
        await self._answer_failures(answers, responder)

    async def _attempt(self, replica: Replica, request: Request, responder: Responder) -> _Failed | None:
        """Send to one replica; None when its response went to the client, else why not."""
        assert self._client is not None, "gateway not started"
        name = replica.name
        self.outstanding[name] = self.outstanding.get(name, 0) + 1
        upstream: httpx.Response | None = None
        try:
            outgoing = self._client.build_request(
                request.method, replica.base_url.rstrip("/") + request.target,
                headers=[(k, v) for k, v in request.headers if k not in _HOP_BY_HOP], content=request.body)
            try:
                upstream = await self._client.send(outgoing, stream=True)
            except httpx.TransportError as exc:
                self.metrics.upstream.labels(name, "error").inc()
                self._eject(name, exc)
                return _Failed(status=None, reason=f"{name}: {type(exc).__name__}")
            status = upstream.status_code
            self.metrics.upstream.labels(name, str(status)).inc()
            if status == 429 or status in RETRIED_STATUSES:
                body = await _read_bounded(upstream)
                if status != 429:
                    self._eject(name, f"HTTP {status}")
                return _Failed(status=status, body=body, retry_after=upstream.headers.get("retry-after"),
                               content_type=upstream.headers.get("content-type", "application/json"),
                               reason=f"{name}: HTTP {status}")
            self.ejections.succeed(name)
            headers = [(k, v) for k, v in upstream.headers.multi_items() if k.lower() not in _HOP_BY_HOP - {"content-length"}]
            await responder.start(status, [*headers, ("x-kaito-replica", name)])
            try:
                async for chunk in upstream.aiter_raw():
                    await responder.write(chunk)
            except httpx.TransportError as exc:
                self._eject(name, exc)
                self.metrics.responses.labels("aborted").inc()
                raise Abort(f"{name} broke off its response") from exc
            await responder.end()
            self.metrics.responses.labels(str(status)).inc()
            return None
        finally:
            self.outstanding[name] -= 1
            if not self.outstanding[name] and self.pool.get(name) is None:
                del self.outstanding[name]
            if upstream is not None:
                with contextlib.suppress(Exception):
                    await upstream.aclose()

    def _eject(self, name: str, why: object) -> None:
        if self.ejections.fail(name):
            self.metrics.ejections.labels(name).inc()
            log.warning("replica %s of %s taken out: %s", name, self.settings.model_name, why)

    async def _answer_failures(self, answers: list[_Failed], responder: Responder) -> None:
        s = self.settings
        if not answers:
            await self._answer(responder, 503, error_body(f"no replica of {s.model_name} is ready", "server_error",
                                                          503), headers=[("retry-after", str(s.retry_after_s))])
            return
        busy = [a for a in answers if a.status == 429]
        if busy:
            after = max((_seconds(a.retry_after) for a in busy), default=1)
            last = busy[-1]
            await self._answer(responder, 429, last.body or error_body("every replica is busy", "rate_limit_error",
                                                                        429),
                               content_type=last.content_type, headers=[("retry-after", str(after))])
            return
        answered = [a for a in answers if a.status is not None]
        if answered:  # the replicas' own error (a model still loading says so itself)
            last = answered[-1]
            extra = [("retry-after", last.retry_after or str(s.retry_after_s))] if last.status == 503 else []
            await self._answer(responder, last.status or 502, last.body, content_type=last.content_type, headers=extra)
            return
        reasons = "; ".join(a.reason for a in answers)
        await self._answer(responder, 502, error_body(f"no replica of {s.model_name} could be reached ({reasons})",
                                                      "server_error", 502))

    async def _answer(self, responder: Responder, status: int, body: bytes, *, content_type: str = "application/json",
                      headers: list[tuple[str, str]] | None = None) -> None:
        self.metrics.responses.labels(str(status)).inc()
        await responder.send(status, body, content_type, headers or [])

    # --- views for the metrics collector --------------------------------------------------------
    def _outstanding_view(self) -> dict[str, int]:
        return {r.name: self.outstanding.get(r.name, 0) for r in self.pool.all()}

    def _ejected_view(self) -> dict[str, bool]:
        return {r.name: self.ejections.is_ejected(r.name) for r in self.pool.all()}


async def _read_bounded(response: httpx.Response) -> bytes:
    body = bytearray()
    with contextlib.suppress(httpx.TransportError):
        async for chunk in response.aiter_bytes():  # decoded: passed on without its content-encoding
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    return bytes(body[:_ERROR_BODY_LIMIT])


def _seconds(value: str | None) -> int:
    """A Retry-After in whole seconds (an HTTP date or garbage counts as 1)."""
    try:
        return max(1, int(float(value))) if value is not None else 1
    except ValueError:
        return 1
