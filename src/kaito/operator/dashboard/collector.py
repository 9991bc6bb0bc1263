"""Gathers the dashboard's facts on the control plane's event loop, only while someone is looking.

Every `interval_s` while the page was polled in the last `idle_after_s` seconds: list the shown
kinds, their pods and the events, scrape each ready model server's `/metrics` (in parallel, short
timeout), and swap in a new JSON snapshot. The HTTP threads only read that snapshot (one reference
swap, no lock needed) and mark that they were asked, so an unwatched control plane does no extra work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime

from kaito.cluster import protocol
from kaito.cluster.local import runner
from kaito.operator.dashboard import state
from kaito.operator.dashboard.kinds import KINDS, DashboardKind

log = logging.getLogger("kaito.dashboard")


class Collector:
    def __init__(self, cluster: protocol.Cluster, kinds: tuple[DashboardKind, ...] = KINDS, *,
                 interval_s: float = 1.0, idle_after_s: float = 60.0, scrape_timeout_s: float = 2.0) -> None:
        self.cluster = cluster
        self.kinds = kinds
        self.interval_s = interval_s
        self.idle_after_s = idle_after_s
        self.scrape_timeout_s = scrape_timeout_s
        self.history = state.MetricsHistory()
        self._asked = 0.0  # monotonic time of the page's last poll (written by HTTP threads)
        self._snapshot = json.dumps({"generated": None, "kinds": []}).encode()
        self._http = None

    def read_snapshot(self) -> bytes:
        """The latest JSON snapshot; also marks the dashboard as watched (called from HTTP threads)."""
        self._asked = time.monotonic()
        return self._snapshot

    @property
    def watched(self) -> bool:
        return time.monotonic() - self._asked < self.idle_after_s

    async def run(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=self.scrape_timeout_s) as http:
            self._http = http
            while True:
                if self.watched:
                    try:
                        await self.refresh()
                    except Exception as exc:  # noqa: BLE001 - a view: log, keep the control plane running
                        log.warning("dashboard refresh failed: %s", exc)
                await asyncio.sleep(self.interval_s)

    async def refresh(self) -> None:
        objects = [(kind, (await self.cluster.list(kind.resource)).items) for kind in self.kinds]
        pods = (await self.cluster.list(protocol.POD)).items
        events = (await self.cluster.list(protocol.EVENT)).items
        endpoints: dict[str, str] = {}
        for pod in pods:
            url = runner.find_local_endpoint([pod])
            if url:
                endpoints[f"{pod['metadata'].get('namespace', 'default')}/{pod['metadata']['name']}"] = url
        await asyncio.gather(*(self._scrape(key, url) for key, url in endpoints.items()))
        self.history.keep_only(f"{p['metadata'].get('namespace', 'default')}/{p['metadata']['name']}" for p in pods)
        snapshot = state.build_snapshot(objects, pods, events, endpoints, self.history, datetime.now(UTC))
        self._snapshot = json.dumps(snapshot, separators=(",", ":")).encode()

    async def _scrape(self, key: str, url: str) -> None:
        if self._http is None:
            return
        with contextlib.suppress(Exception):  # a server starting or stopping: no point this second
            resp = await self._http.get(url.rstrip("/") + "/metrics")
            if resp.status_code == 200:
                self.history.add(key, state.parse_sample(resp.text, time.time()))
