"""One pod of the local runner: its init containers, its containers as processes, probes, restarts.

A `PodWorker` is the kubelet for one pod. It prepares the volumes, runs the init containers in
order, starts the containers, polls the readiness probe, and restarts a crashed container with
exponential back-off (`restartPolicy: Always`) or reports the exit code (`Never`, Job pods). It
never writes to the store itself: it updates its `PodState` and wakes the runner, which writes the
Pod and workload status in one place.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaito.cluster.local import pods, processes

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
PROBE_INTERVAL_S = 0.5


@dataclass
class PodState:
    phase: str = "Pending"  # Pending | Running | Succeeded | Failed
    ready: bool = False
    reason: str = ""
    message: str = ""
    restarts: int = 0
    failures: int = 0
    exit_code: int | None = None
    pid: int | None = None
    started: bool = False
    probe_error: str = ""  # why the readiness probe cannot run at all (e.g. an unknown named port)
    ports: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PodContext:
    """What a worker needs from the runner (kept narrow so tests can build one)."""

    home: Path
    has_gpu: bool
    is_runtime_image: Callable[[str], bool]
    lookup: Callable[[str, str, str], Mapping[str, str] | None]  # (kind, namespace, name) → data
    push_target: Callable[[], Any]  # awaitable → the image a Job's push sidecar publishes, or None
    changed: Callable[[], None]

    @property
    def images_root(self) -> Path:
        return self.home / "images"

    @property
    def volumes_root(self) -> Path:
        return self.home / "volumes"


class PodWorker:
    def __init__(self, ctx: PodContext, *, namespace: str, name: str, template: Mapping[str, Any],
                 template_hash: str, node: str | None, restart_always: bool, backoff_limit: int = 6) -> None:
        self.ctx = ctx
        self.namespace, self.name = namespace, name
        self.template = template
        self.template_hash = template_hash
        self.node = node
        self.restart_always = restart_always
        self.backoff_limit = backoff_limit
        self.state = PodState()
        # Chosen once, so the port stays the same across restarts and is known before the first write.
        self.state.ports = {p: processes.find_free_port()
                            for p in pods.container_ports(list(self.spec.get("containers") or []))}
        self.log_path = ctx.home / "logs" / namespace / f"{name}.log"
        self._procs: list[asyncio.subprocess.Process] = []
        self._task: asyncio.Task | None = None

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.template.get("spec") or {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pod-{self.namespace}/{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for proc in self._procs:
            await processes.stop(proc)
        self._procs = []
        shutil.rmtree(self.ctx.volumes_root / "pods" / self.namespace / self.name, ignore_errors=True)

    def _set(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.state, key, value)
        self.ctx.changed()

    # -- the pod's life ----------------------------------------------------------------------------

    async def _run(self) -> None:
        if self.node is None:
            self._set(reason="Unschedulable", message="no Ready local node matches the pod's node affinity")
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                code = await self._attempt(attempt)
            except pods.PodConfigError as exc:
                self._set(phase="Pending", ready=False, reason="CreateContainerConfigError", message=str(exc))
                code = None
            if code == "needs-cluster":
                return
            if not self.restart_always:
                if code == 0:
                    self._set(phase="Succeeded", ready=False, exit_code=0, pid=None, reason="Completed", message="")
                    return
                failures = self.state.failures + 1
                if failures > self.backoff_limit:
                    self._set(phase="Failed", ready=False, failures=failures, pid=None)
                    return
                self._set(failures=failures)
            else:
                self._set(restarts=self.state.restarts + (1 if self.state.started else 0), ready=False)
            delay = min(MAX_BACKOFF_S, 2.0 ** max(0, attempt - 1) * 0.5)
            await asyncio.sleep(delay)

    def _header(self, text: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"==> {time.strftime('%H:%M:%S')} {text} <==\n")

    async def _attempt(self, attempt: int) -> int | str | None:
        plan = pods.plan_volumes(self.spec, volumes_root=self.ctx.volumes_root, namespace=self.namespace,
                                 pod_name=self.name, lookup=self.ctx.lookup)
        for path in plan.dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        for path, text in plan.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        inits = list(self.spec.get("initContainers") or [])
        mains = list(self.spec.get("containers") or [])
        for c in inits + mains:
            for link, target in pods.plan_nested_mounts(c, plan):
                _link_nested_mount(link, target)
        ways = {}
        for c, way in pods.classify_pod_containers(self.spec, is_runtime_image=self.ctx.is_runtime_image,
                                                   images_root=self.ctx.images_root,
                                                   runs_to_completion=not self.restart_always):
            if way == "needs-cluster":
                self._set(phase="Failed" if not self.restart_always else "Pending", reason="ImageNeedsCluster",
                          message=f"container {c.get('name')}: image {c.get('image')} is not kaito's runtime image "
                                  f"nor a local image under {self.ctx.images_root}; it needs a Kubernetes cluster")
                return "needs-cluster"
            ways[c.get("name")] = way
        self._set(phase="Pending", reason="PodInitializing", message="", started=False)
        for c in inits:
            self._header(f"init container {c.get('name')} (attempt {attempt})")
            code = await self._run_container(c, ways[c.get("name")], plan)
            if code != 0:
                self._set(reason="InitContainerFailed", exit_code=code,
                          message=f"init container {c.get('name')} exited with code {code}; see {self.log_path}")
                return code
        for c in mains:
            self._header(f"container {c.get('name')} (attempt {attempt})")
        started = [await self._start_container(c, ways[c.get("name")], plan) for c in mains]
        self._set(phase="Running", reason="", message="", started=True,
                  pid=next((p.pid for p in started if isinstance(p, asyncio.subprocess.Process)), None))
        prober = asyncio.create_task(self._probe(mains))
        try:
            codes = [p if isinstance(p, int) else await p.wait() for p in started]
        finally:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        self._procs = []
        code = next((c for c in codes if c != 0), 0)
        self._set(ready=False, exit_code=code, pid=None,
                  reason="Completed" if code == 0 else "Error",
                  message="" if code == 0 else f"exited with code {code}; see {self.log_path}")
        return code

    def _env(self, container: Mapping[str, Any]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAITO_")}
        if "HF_HOME" not in env and "HF_HUB_CACHE" not in env:
            env["HF_HOME"] = str(self.ctx.home / "huggingface")  # the shared model cache
        env.update(pods.build_env(container, self.namespace, self.name, self.ctx.lookup))
        env.update({processes.ENV_HOME: str(self.ctx.home.resolve()), processes.ENV_POD: f"{self.namespace}/{self.name}",
                    "PYTHONUNBUFFERED": "1", "HOSTNAME": self.name})
        return env

    async def _spawn(self, container: Mapping[str, Any], way: str, plan: pods.VolumePlan) -> asyncio.subprocess.Process:
        image_dir = pods.build_image_dir(self.ctx.images_root, container.get("image") or "") if way == "local-image" else None
        mapping = pods.build_path_map(container, plan, image_dir)
        argv = pods.build_argv(container, mapping, ports=self.state.ports, has_gpu=self.ctx.has_gpu)
        env = {k: pods.rewrite_paths(v, mapping) for k, v in self._env(container).items()}
        cwd = self.ctx.volumes_root / "pods" / self.namespace / self.name
        cwd.mkdir(parents=True, exist_ok=True)
        proc = await processes.spawn(argv, env, cwd, self.log_path)
        self._procs.append(proc)
        return proc

    async def _run_container(self, container: Mapping[str, Any], way: str, plan: pods.VolumePlan) -> int:
        if way == "local-push":
            return await self._push(container, plan)
        proc = await self._spawn(container, way, plan)
        self._set(pid=proc.pid)
        code = await proc.wait()
        self._procs.remove(proc)
        return code

    async def _start_container(self, container, way, plan):
        if way == "local-push":
            return await self._push(container, plan)
        return await self._spawn(container, way, plan)

    async def _push(self, container: Mapping[str, Any], plan: pods.VolumePlan) -> int:
        """The image-push sidecar, done locally: the results become a local image's `/data`."""
        target = await self.ctx.push_target()
        sources = [plan.dirs[m["name"]] for m in container.get("volumeMounts") or []
                   if m.get("name") in plan.dirs and not any(p.parent == plan.dirs[m["name"]] for p in plan.files)]
        results = next((s for s in sources if (s / "fine_tuning_completed.txt").exists()), None)
        if not target or results is None:
            self._header(f"local push: no completed adapter to publish (target {target})")
            return 1
        data = pods.build_image_dir(self.ctx.images_root, target) / "data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        for item in results.iterdir():
            if item.is_file():
                shutil.copy2(item, data / item.name)
        self._header(f"local push: {results} → local image {target} ({data})")
        return 0

    async def _probe(self, containers: list[Mapping[str, Any]]) -> None:
        import httpx

        probe = next((c.get("readinessProbe") for c in containers if c.get("readinessProbe")), None)
        get = (probe or {}).get("httpGet")
        if not get:
            self._set(ready=True)
            return
        try:
            port = self.state.ports.get(pods.compute_probe_port(get, containers))
        except pods.PodConfigError as exc:
            self._set(probe_error=f"Readiness probe errored: {exc}")
            return
        url = f"http://{pods.LOCAL_HOST}:{port}{get.get('path') or '/'}"
        failures = 0
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                try:
                    ok = (await client.get(url)).status_code < 400
                except httpx.HTTPError:
                    ok = False
                failures = 0 if ok else failures + 1
                ready = ok or (self.state.ready and failures < 3)
                if ready != self.state.ready:
                    self._set(ready=ready)
                await asyncio.sleep(PROBE_INTERVAL_S)


def _link_nested_mount(link: Path, target: Path) -> None:
    """Make `link` point at `target` (see `pods.plan_nested_mounts`); a real file there is kept.

    Removing the pod's folders later removes the link, never the volume behind it (shutil.rmtree
    does not follow symlinks)."""
    if link.is_symlink():
        if link.readlink() == target:
            return
        link.unlink()
    elif link.exists():
        log.warning("cannot show volume %s at %s: something else is there", target, link)
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)


def decode_secret(obj: Mapping[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode("utf-8", errors="replace") for k, v in (obj.get("data") or {}).items()}
    data.update(obj.get("stringData") or {})
    return data
