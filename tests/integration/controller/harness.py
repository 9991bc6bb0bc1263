"""Test harness for the controller: Workspace factory, a counting/crashing Cluster wrapper, and a
driver that alternates reconciles with the fake kubelet until the world stops moving."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from kaito.cluster import protocol
from kaito.controller.observe import WorkspaceKey
from kaito.controller.reconciler import Reconciler
from tests.support.kubelet import FakeKubelet

SKU = "Standard_NC24ads_A100_v4"  # 1 × A100 80 GB: fits every 7B preset


def make_workspace(name: str = "ws", namespace: str = "default", **overrides: Any) -> dict:
    """A `kaito.sh/v1alpha1` Workspace dict; overrides replace top-level sections."""
    ws: dict[str, Any] = {
        "apiVersion": "kaito.sh/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": name, "namespace": namespace},
        "resource": {"instanceType": SKU, "count": 1, "labelSelector": {"matchLabels": {"apps": name}}},
        "inference": {"preset": {"name": "falcon-7b"}},
    }
    for key, value in overrides.items():
        if value is None:
            ws.pop(key, None)
        else:
            ws[key] = copy.deepcopy(value)
    return ws


class Crash(BaseException):
    """Raised by `CountingCluster` to simulate the controller process dying mid-reconcile.

    A BaseException, like the cancellation a killed task sees, so no `except Exception` absorbs it.
    """


class CountingCluster:
    """Wraps a Cluster: counts writes by kind, and can crash after the n-th write."""

    WRITES = ("apply", "apply_status", "delete", "emit_event")

    def __init__(self, inner, *, crash_after: int | None = None) -> None:
        self.inner = inner
        self.crash_after = crash_after
        self.writes: Counter[str] = Counter()
        self.total = 0
        self.deletes: list[tuple[str, str, str]] = []  # (kind, name, propagation) of each delete

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name not in self.WRITES:
            return attr

        async def counted(*args, **kwargs):
            if self.crash_after is not None and self.total >= self.crash_after:
                raise Crash(f"crash before write {self.total + 1}")
            result = await attr(*args, **kwargs)
            self.total += 1
            obj = args[0] if args else None
            label = obj.kind if isinstance(obj, protocol.ResourceKind) else (obj or {}).get("kind", "?")
            self.writes[f"{name}:{label}"] += 1
            if name == "delete":
                self.deletes.append((label, args[1], kwargs.get("propagation", "Background")))
            return result

        return counted

    def reset(self) -> None:
        self.writes.clear()
        self.total = 0


async def converge(
    reconciler: Reconciler,
    kubelet: FakeKubelet,
    keys: list[WorkspaceKey],
    *,
    rounds: int = 30,
    jobs: str | None = None,
) -> int:
    """Reconcile every key, let the kubelet act, repeat until a round changes nothing."""
    writes = getattr(reconciler.cluster, "total", None)
    for n in range(rounds):
        for key in keys:
            await reconciler.reconcile(key)
        moved = await kubelet.step()
        if writes is not None and reconciler.cluster.total != writes:  # the controller acted: go on
            writes = reconciler.cluster.total
            moved += 1
        if jobs == "start":
            moved += await kubelet.start_jobs()
        elif jobs in ("succeed", "fail"):
            moved += await kubelet.start_jobs()
            moved += await kubelet.finish_jobs(succeed=jobs == "succeed")
        if moved == 0:
            return n
    raise AssertionError(f"no convergence after {rounds} rounds")


def conditions(ws: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in (ws.get("status") or {}).get("conditions") or []}
