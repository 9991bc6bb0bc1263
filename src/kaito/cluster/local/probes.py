"""Probes of a local pod's containers, run as the kubelet runs them: startup, liveness, readiness.

Kubernetes' rules, kept here:
- while a container's startup probe has not succeeded, its liveness and readiness probes wait;
  `failureThreshold` startup failures in a row kill the container (then its restart policy applies);
- `failureThreshold` liveness failures in a row kill the container;
- `failureThreshold` readiness failures in a row make it not ready, `successThreshold` successes
  in a row ready again;
- a probe runs `initialDelaySeconds` after the container started, then every `periodSeconds`,
  and fails when it takes over `timeoutSeconds` (defaults 0, 10, 1; thresholds 1 and 3).
One liberty, which can only bring a success earlier: while a startup or readiness probe (with
`successThreshold` 1) has not succeeded yet, it is also tried every `FAST_S` between its periods,
so a local model that is up is seen up at once. Failures count only at the probe's own period, so
a kill or a not-ready comes when the kubelet's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kaito.cluster.local import pods

FAST_S = 0.5
Kind = Literal["startup", "liveness", "readiness"]
Check = Callable[[], Awaitable[tuple[bool, str]]]  # → (succeeded, why it failed)
Report = Callable[[str], None]  # a counted failure, in words


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    kind: Kind
    handler: Literal["httpGet", "tcpSocket", "exec"]
    url: str = ""  # httpGet
    headers: tuple[tuple[str, str], ...] = ()
    port: int = 0  # tcpSocket: the local port
    command: tuple[str, ...] = ()  # exec, as the container wrote it
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    grace_s: float | None = None  # the probe's own terminationGracePeriodSeconds, if any

    @property
    def title(self) -> str:
        return self.kind.capitalize()


def _number(probe: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = probe.get(key)
    return max(minimum, float(value)) if isinstance(value, int | float) and not isinstance(value, bool) else default


def build_probe(kind: Kind, probe: Mapping[str, Any], containers: Sequence[Mapping[str, Any]],
                ports: Mapping[int, int]) -> ProbeSpec:
    """The probe of a container spec, with its ports mapped to this machine's (pure).

    Raises `pods.PodConfigError` for a probe that cannot run here (unknown named port, gRPC)."""
    timing = dict(initial_delay_s=_number(probe, "initialDelaySeconds", 0.0, 0.0),
                  period_s=_number(probe, "periodSeconds", 10.0, 1.0),
                  timeout_s=_number(probe, "timeoutSeconds", 1.0, 1.0),
                  success_threshold=1 if kind != "readiness" else int(_number(probe, "successThreshold", 1, 1)),
                  failure_threshold=int(_number(probe, "failureThreshold", 3, 1)),
                  grace_s=_number(probe, "terminationGracePeriodSeconds", -1.0, 0.0)
                  if probe.get("terminationGracePeriodSeconds") is not None else None)
    if get := probe.get("httpGet"):
        port = ports.get(pods.compute_probe_port(get, containers))
        if port is None:
            raise pods.PodConfigError(f"httpGet port {get.get('port')!r} is not a container port of the pod")
        scheme = str(get.get("scheme") or "HTTP").lower()
        path = str(get.get("path") or "/")
        url = f"{scheme}://{pods.LOCAL_HOST}:{port}{path if path.startswith('/') else '/' + path}"
        headers = tuple((str(h.get("name")), str(h.get("value"))) for h in get.get("httpHeaders") or [])
        return ProbeSpec(kind=kind, handler="httpGet", url=url, headers=headers, **timing)
    if tcp := probe.get("tcpSocket"):
        port = ports.get(pods.compute_probe_port(tcp, containers))
        if port is None:
            raise pods.PodConfigError(f"tcpSocket port {tcp.get('port')!r} is not a container port of the pod")
        return ProbeSpec(kind=kind, handler="tcpSocket", port=port, **timing)
    if exe := probe.get("exec"):
        command = tuple(str(c) for c in exe.get("command") or [])
        if not command:
            raise pods.PodConfigError("exec probe without a command")
        return ProbeSpec(kind=kind, handler="exec", command=command, **timing)
    raise pods.PodConfigError("only httpGet, tcpSocket and exec probes run on the local cluster")


async def check_http(spec: ProbeSpec, client: Any) -> tuple[bool, str]:
    """`client` is an `httpx.AsyncClient`; 200-399 succeeds, as in Kubernetes."""
    import httpx

    try:
        response = await client.get(spec.url, headers=dict(spec.headers), timeout=spec.timeout_s)
    except httpx.TimeoutException:
        return False, f'Get "{spec.url}": no answer within {spec.timeout_s:g}s'
    except httpx.HTTPError as exc:
        return False, f'Get "{spec.url}": {exc or type(exc).__name__}'
    if 200 <= response.status_code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {response.status_code}"


async def check_tcp(spec: ProbeSpec) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(spec.timeout_s):
            _, writer = await asyncio.open_connection(pods.LOCAL_HOST, spec.port)
    except (OSError, TimeoutError) as exc:
        return False, f"dial tcp {pods.LOCAL_HOST}:{spec.port}: {exc or 'timed out'}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""


async def check_exec(spec: ProbeSpec, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> tuple[bool, str]:
    """Run the probe's command (already made local: `argv`); exit code 0 succeeds."""
    try:
        proc = await asyncio.create_subprocess_exec(*argv, env=dict(env), cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                    start_new_session=True)
    except OSError as exc:
        return False, f"command {list(spec.command)} could not start: {exc}"
    try:
        async with asyncio.timeout(spec.timeout_s):
            out, _ = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return False, f"command {list(spec.command)} timed out after {spec.timeout_s:g}s"
    if proc.returncode == 0:
        return True, ""
    return False, f"command {list(spec.command)} exited with {proc.returncode}: {out.decode(errors='replace')[-200:]}"


async def wait_started(spec: ProbeSpec, check: Check, report: Report) -> bool:
    """Until the startup probe succeeds (True) or fails `failure_threshold` counted times (False)."""
    loop = asyncio.get_running_loop()
    count_at = loop.time() + spec.initial_delay_s
    failures = 0
    while True:
        ok, why = await check()
        if ok:
            return True
        if loop.time() >= count_at:
            failures += 1
            report(why)
            if failures >= spec.failure_threshold:
                return False
            count_at += spec.period_s
        await asyncio.sleep(max(0.0, min(FAST_S, count_at - loop.time())))


async def wait_dead(spec: ProbeSpec, check: Check, report: Report, started_at: float) -> str:
    """Until the liveness probe fails `failure_threshold` times in a row; returns the last reason."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, started_at + spec.initial_delay_s - loop.time()))
    failures = 0
    while True:
        tick = loop.time()
        ok, why = await check()
        failures = 0 if ok else failures + 1
        if not ok:
            report(why)
            if failures >= spec.failure_threshold:
                return why
        await asyncio.sleep(max(0.0, tick + spec.period_s - loop.time()))


async def track_ready(spec: ProbeSpec, check: Check, set_ready: Callable[[bool], None], report: Report,
                      started_at: float) -> None:
    """Forever: readiness from the probe's results (thresholds as in Kubernetes)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, started_at + spec.initial_delay_s - loop.time()))
    ready, successes, failures = False, 0, 0
    while True:
        tick = loop.time()
        ok, why = await check()
        successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
        if not ready and successes >= spec.success_threshold:
            ready = True
            set_ready(True)
        elif ready and failures >= spec.failure_threshold:
            ready = False
            set_ready(False)
            report(why)
        fast = not ready and spec.success_threshold == 1
        await asyncio.sleep(max(0.0, tick + (min(FAST_S, spec.period_s) if fast else spec.period_s) - loop.time()))
