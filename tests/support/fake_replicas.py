"""Small fake model servers on 127.0.0.1 for the local gateway and autoscaler tests.

Each `FakeReplica` answers on the test's event loop and does what its `mode` says: `ok` (a JSON
answer naming itself), `stream` (two SSE events with a pause the test controls in between),
`status` (a fixed status, e.g. 429 with Retry-After or 503), `hang` (never answers; records that its
request was cancelled when the caller hung up) or `break` (starts a chunked body, then drops the
connection). `/metrics` serves `vllm:num_requests_waiting` as set by the test. `hold` (an
asyncio.Event) keeps every `ok` answer back until it is set, so a test can make requests truly
concurrent. `FakeScaleTarget` plays an InferenceSet's scale subresource: writing replicas starts
or stops fakes and updates the pool the gateway reads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from kaito.operator.serving.front import Abort, FrontServer, Request, Responder
from kaito.operator.serving.replicas import Replica, ReplicaPool, Scale


@dataclass
class FakeReplica:
    name: str
    mode: str = "ok"
    status: int = 200
    retry_after: str | None = None
    waiting: float = 0.0
    hold: asyncio.Event | None = None
    proceed: asyncio.Event = field(default_factory=asyncio.Event)  # `stream`: the second event waits for it
    served: int = 0  # requests answered (any status), /metrics not counted
    arrived: int = 0
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    received: list[Request] = field(default_factory=list)
    on_arrival: Callable[[], None] | None = None
    server: FrontServer | None = None

    url: str = ""

    def replica(self, ready: bool = True) -> Replica:
        return Replica(name=self.name, base_url=self.url, ready=ready)

    async def start(self) -> FakeReplica:
        self.server = FrontServer(self._handle)
        await self.server.start()
        self.url = self.server.url  # kept after stop: a stopped replica still listed refuses connections
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    async def _handle(self, request: Request, out: Responder) -> None:
        if request.path == "/metrics":
            text = (f"# TYPE vllm:num_requests_waiting gauge\n"
                    f'vllm:num_requests_waiting{{model_name="set"}} {self.waiting}\n')
            await out.send(200, text.encode(), "text/plain; version=0.0.4")
            return
        self.arrived += 1
        self.received.append(request)
        if self.on_arrival is not None:
            self.on_arrival()
        try:
            await self._answer(request, out)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            self.served += 1

    async def _answer(self, request: Request, out: Responder) -> None:
        if self.mode == "hang":
            await asyncio.Event().wait()
        if self.mode == "status":
            headers = [("retry-after", self.retry_after)] if self.retry_after else []
            doc = {"error": {"message": f"{self.name} says {self.status}", "type": "x", "code": self.status}}
            await out.send(self.status, json.dumps(doc).encode(), headers=headers)
            return
        if self.mode == "stream":
            await out.start(200, [("content-type", "text/event-stream")])
            await out.write(b"data: one\n\n")
            await self.proceed.wait()
            await out.write(b"data: two\n\ndata: [DONE]\n\n")
            await out.end()
            return
        if self.mode == "break":
            await out.start(200, [("content-type", "application/json")])
            await out.write(b'{"partial": ')
            raise Abort("broken on purpose")
        if self.hold is not None:
            await self.hold.wait()
        doc = {"replica": self.name, "path": request.target, "body": request.body.decode("utf-8", "replace")}
        await out.send(200, json.dumps(doc).encode())


async def start_fakes(count: int, prefix: str = "r") -> list[FakeReplica]:
    return [await FakeReplica(name=f"{prefix}{i}").start() for i in range(count)]


class FakeScaleTarget:
    """`spec.replicas` that starts (`ready_after` set: once that event is set) or stops fakes."""

    def __init__(self, pool: ReplicaPool, spec: int = 0, prefix: str = "w") -> None:
        self.pool = pool
        self.spec = spec
        self.prefix = prefix
        self.fakes: list[FakeReplica] = []
        self.writes: list[int] = []
        self.waiting = 0.0
        self._next = 0

    async def read_scale(self) -> Scale:
        return Scale(spec_replicas=self.spec, ready_replicas=len(self.pool.ready()))

    async def set_replicas(self, replicas: int) -> None:
        self.writes.append(replicas)
        self.spec = replicas
        while len(self.fakes) < replicas:
            fake = await FakeReplica(name=f"{self.prefix}{self._next}", waiting=self.waiting).start()
            self._next += 1
            self.fakes.append(fake)
        while len(self.fakes) > replicas:
            await self.fakes.pop().stop()
        self.pool.update(f.replica() for f in self.fakes)

    def set_waiting(self, value: float) -> None:
        self.waiting = value
        for fake in self.fakes:
            fake.waiting = value

    async def stop(self) -> None:
        for fake in self.fakes:
            await fake.stop()
