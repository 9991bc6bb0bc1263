"""What the gateway and the autoscaler need to know about an InferenceSet, as small interfaces.

They never read the store themselves: the local control plane (a later phase wires it to the
InferenceSet controller's children) tells them which replicas exist and where they listen
(`ReplicaPool.update`), and gives the autoscaler a `ScaleTarget` (the InferenceSet's scale
subresource: read `spec.replicas` and `status.readyReplicas`, write `spec.replicas`). The gateway
reports its load to the autoscaler as `Demand` and asks it for a replica through a `Waker`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class Replica:
    """One replica of the set: a child Workspace's model server, reachable at `base_url`."""

    name: str  # the child Workspace (or pod) name: stable for as long as the replica lives
    base_url: str  # http://127.0.0.1:PORT, no trailing slash needed
    ready: bool = True
    metrics_path: str = "/metrics"

    @property
    def metrics_url(self) -> str:
        return self.base_url.rstrip("/") + self.metrics_path


class ReplicaPool:
    """The live set of a set's replicas; `update` replaces it whole (level-triggered, like a watch
    resync), and waiters for a ready replica wake on every change. Used on one event loop."""

    def __init__(self, replicas: Iterable[Replica] = ()) -> None:
        self._replicas: dict[str, Replica] = {r.name: r for r in replicas}
        self._changed = asyncio.Event()
        self._version = 0

    def update(self, replicas: Iterable[Replica]) -> None:
        fresh = {r.name: r for r in replicas}
        if fresh == self._replicas:
            return
        self._replicas = fresh
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def all(self) -> list[Replica]:
        return sorted(self._replicas.values(), key=lambda r: r.name)

    def ready(self) -> list[Replica]:
        return [r for r in self.all() if r.ready]

    def get(self, name: str) -> Replica | None:
        return self._replicas.get(name)

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until at least one replica is ready; False when `timeout_s` passes first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.ready():
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                async with asyncio.timeout(left):
                    await self._changed.wait()
            except TimeoutError:
                return bool(self.ready())
        return True


@dataclass(frozen=True, kw_only=True)
class Scale:
    """The scale subresource as read: `spec.replicas` and `status.readyReplicas`."""

    spec_replicas: int
    ready_replicas: int


class ScaleTarget(Protocol):
    """An InferenceSet's scale subresource. `read_scale` may raise (the shell logs and retries
    on its next tick); `set_replicas` writes `spec.replicas` only."""

    async def read_scale(self) -> Scale: ...

    async def set_replicas(self, replicas: int) -> None: ...


@dataclass(frozen=True)
class CallbackScaleTarget:
    """A `ScaleTarget` made of two callbacks (what the control plane passes before the scale
    subresource exists in the `Cluster` protocol; tests pass fakes)."""

    read: Callable[[], Awaitable[Scale]]
    write: Callable[[int], Awaitable[None]]

    async def read_scale(self) -> Scale:
        return await self.read()

    async def set_replicas(self, replicas: int) -> None:
        await self.write(replicas)


@dataclass(frozen=True, kw_only=True)
class Demand:
    """The gateway's load as the autoscaler sees it: requests being served, requests held while
    no replica is ready, and when (on the autoscaler's clock) the last request arrived."""

    in_flight: int = 0
    held: int = 0
    last_request_at: float | None = None

    @property
    def active(self) -> bool:
        return self.in_flight > 0 or self.held > 0


class Waker(Protocol):
    """Asked by the gateway, without waiting, for at least one replica (the set is at zero)."""

    def wake(self) -> None: ...
