"""One pod of the local runner: its init containers, its containers as processes, probes, restarts.

A `PodWorker` is the kubelet for one pod. It prepares the volumes, runs the init containers in
order, starts the containers, runs their startup, liveness and readiness probes (`probes`), and
restarts a crashed container, or one its liveness or startup probe failed, with exponential
back-off (`restartPolicy: Always`) or reports the exit code (`Never`, Job pods). Stopping a
container is SIGTERM, `terminationGracePeriodSeconds` (the probe's own when a probe kills it), then
SIGKILL. It never writes to the store itself: it updates its `PodState` (events to record
included) and wakes the runner, which writes the Pod, its Events and the workload status in one
place.

Each container gets a termination-message file (`KAITO_TERMINATION_LOG`, where kaito's model server
writes why it could not start, as a kubelet reads `/dev/termination-log`); after the container
exits its content — or, with `terminationMessagePolicy: FallbackToLogsOnError` and nothing written,
the log's tail — becomes `lastState.terminated.message`. A vLLM container runs in the interpreter
vLLM is installed in (`PodContext.vllm_python`) with downloads in the shared model cache; its engine
core and workers are children in its process group, so stopping the pod stops them all.

The local runner restarts a pod's containers together: a liveness failure of one stops them all
(a Kubernetes kubelet restarts that container alone; KAITO's pods have one).
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

from kaito.cluster.events import now_rfc3339
from kaito.cluster.local import pods, probes, processes

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
BACKOFF_RESET_S = 2 * MAX_BACKOFF_S  # a run this long starts the back-off over (the kubelet's rule)
DEFAULT_GRACE_S = 30.0  # Kubernetes' default terminationGracePeriodSeconds
TERMINATION_LOG_ENV = "KAITO_TERMINATION_LOG"  # where kaito's runtime writes its termination message
MAX_MESSAGE_BYTES = 4096  # the kubelet keeps at most this much of a termination message
LOG_TAIL_LINES, LOG_TAIL_BYTES = 80, 2048  # FallbackToLogsOnError: the kubelet's tail of the log


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
    started: bool = False  # init containers done, containers started (the pod is Initialized)
    probe_error: str = ""  # why a probe cannot run at all (e.g. an unknown named port)
    ports: dict[int, int] = field(default_factory=dict)
    started_at: str = ""  # when the running containers started (RFC 3339)
    container_started: dict[str, bool] = field(default_factory=dict)  # startup probe passed
    container_ready: dict[str, bool] = field(default_factory=dict)
    last_state: dict[str, Any] | None = None  # `terminated` of the previous run, once restarted
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message) to record


@dataclass(frozen=True)
class PodContext:
    """What a worker needs from the runner (kept narrow so tests can build one)."""

    home: Path
    has_gpu: bool
    is_runtime_image: Callable[[str], bool]
    lookup: Callable[[str, str, str], Mapping[str, str] | None]  # (kind, namespace, name) → data
    push_target: Callable[[], Any]  # awaitable → the image a Job's push sidecar publishes, or None
    changed: Callable[[], None]
    vllm_python: str | None = None  # the interpreter of vLLM model servers (None: this one)

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

    @property
    def grace_s(self) -> float:
        value = self.spec.get("terminationGracePeriodSeconds")
        return float(value) if isinstance(value, int | float) and value >= 0 else DEFAULT_GRACE_S

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pod-{self.namespace}/{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await asyncio.gather(*(processes.stop(p, self.grace_s) for p in self._procs))
        self._procs = []
        shutil.rmtree(self.ctx.volumes_root / "pods" / self.namespace / self.name, ignore_errors=True)

    def _set(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.state, key, value)
        self.ctx.changed()

    def _event(self, type_: str, reason: str, message: str) -> None:
        self.state.events.append((type_, reason, message))
        self.ctx.changed()

    def _container_names(self) -> str:
        return ",".join(str(c.get("name")) for c in self.spec.get("containers") or [])

    # -- the pod's life ----------------------------------------------------------------------------

    async def _run(self) -> None:
        if self.node is None:
            self._set(reason="Unschedulable", message="no Ready local node matches the pod's node affinity")
            return
        attempt = backoff_round = 0
        loop = asyncio.get_running_loop()
        while True:
            attempt += 1
            began = loop.time()
            try:
                code = await self._attempt(attempt)
            except pods.PodConfigError as exc:
                self._set(phase="Pending", ready=False, reason="CreateContainerConfigError", message=str(exc))
                code = None
            backoff_round = 1 if loop.time() - began >= BACKOFF_RESET_S else backoff_round + 1
            delay = min(MAX_BACKOFF_S, 2.0 ** max(0, backoff_round - 1) * 0.5)
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
            elif self.state.started:
                names = self._container_names()
                self._set(restarts=self.state.restarts + 1, ready=False, reason="CrashLoopBackOff",
                          message=f"back-off {delay:g}s restarting failed container={names} pod={self.name}")
                self._event("Warning", "BackOff", f"Back-off restarting failed container {names} in pod {self.name}")
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
        started_at = now_rfc3339()
        self._set(phase="Running", reason="", message="", started=True, started_at=started_at,
                  container_started={}, container_ready={},
                  pid=next((p.pid for p in started if isinstance(p, asyncio.subprocess.Process)), None))
        prober = asyncio.create_task(self._watch_probes(mains, plan))
        try:
            codes = [p if isinstance(p, int) else processes.exit_code(await p.wait()) for p in started]
        finally:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        self._procs = []
        code = next((c for c in codes if c != 0), 0)
        reason = "Completed" if code == 0 else "Error"
        failed = next((c for c, k in zip(mains, codes, strict=True) if k != 0), None)
        told = self._termination_message(failed) if failed is not None else ""
        message = told or ("" if code == 0 else f"exited with code {code}; see {self.log_path}")
        self._set(ready=False, exit_code=code, pid=None, reason=reason, message=message, container_ready={},
                  last_state={"terminated": {"exitCode": code, "reason": reason, "message": message,
                                             "startedAt": started_at, "finishedAt": now_rfc3339()}})
        return code

    def _env(self, container: Mapping[str, Any]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAITO_")}
        if "HF_HOME" not in env and "HF_HUB_CACHE" not in env:
            env["HF_HOME"] = str(self.ctx.home / "huggingface")  # the shared model cache
        env.update(pods.build_env(container, self.namespace, self.name, self.ctx.lookup))
        env.update({processes.ENV_HOME: str(self.ctx.home.resolve()), processes.ENV_POD: f"{self.namespace}/{self.name}",
                    "PYTHONUNBUFFERED": "1", "HOSTNAME": self.name,
                    TERMINATION_LOG_ENV: str(self._termination_path(container))})
        return env

    def _termination_path(self, container: Mapping[str, Any]) -> Path:
        return self.ctx.volumes_root / "pods" / self.namespace / self.name / f".termination-{container.get('name')}"

    def _termination_message(self, container: Mapping[str, Any]) -> str:
        """What the container wrote to its termination-message file, else (FallbackToLogsOnError) the
        tail of the log, as the kubelet reports it."""
        try:
            told = self._termination_path(container).read_bytes()[:MAX_MESSAGE_BYTES].decode("utf-8", "replace")
        except OSError:
            told = ""
        if told.strip() or container.get("terminationMessagePolicy") != "FallbackToLogsOnError":
            return told.strip()
        try:
            lines = self.log_path.read_bytes().decode("utf-8", "replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return ""
        return "\n".join(lines).encode()[-LOG_TAIL_BYTES:].decode("utf-8", "replace").strip()

    @staticmethod
    def _model_cache(env: Mapping[str, str]) -> str | None:
        """The Hugging Face hub cache the pod's environment names (where vLLM's downloads go here)."""
        if env.get("HF_HUB_CACHE"):
            return env["HF_HUB_CACHE"]
        return str(Path(env["HF_HOME"]) / "hub") if env.get("HF_HOME") else None

    async def _spawn(self, container: Mapping[str, Any], way: str, plan: pods.VolumePlan) -> asyncio.subprocess.Process:
        image_dir = pods.build_image_dir(self.ctx.images_root, container.get("image") or "") if way == "local-image" else None
        mapping = pods.build_path_map(container, plan, image_dir)
        env = {k: pods.rewrite_paths(v, mapping) for k, v in self._env(container).items()}
        vllm = pods.is_vllm_container(container)
        argv = pods.build_argv(container, mapping, ports=self.state.ports, has_gpu=self.ctx.has_gpu,
                               python=self.ctx.vllm_python if vllm else None,
                               model_cache=self._model_cache(env) if vllm else None)
        cwd = self.ctx.volumes_root / "pods" / self.namespace / self.name
        cwd.mkdir(parents=True, exist_ok=True)
        self._termination_path(container).unlink(missing_ok=True)  # a message is this run's, never the last
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

    # -- probes ------------------------------------------------------------------------------------

    async def _watch_probes(self, containers: list[Mapping[str, Any]], plan: pods.VolumePlan) -> None:
        """Every container's probes, until a liveness or startup failure has its processes stopped."""
        import httpx

        specs: dict[str, dict[str, probes.ProbeSpec]] = {}
        for c in containers:
            for kind in ("startup", "liveness", "readiness"):
                if c.get(f"{kind}Probe"):
                    try:
                        spec = probes.build_probe(kind, c[f"{kind}Probe"], containers, self.state.ports)
                    except pods.PodConfigError as exc:
                        self._set(probe_error=f"{kind.capitalize()} probe errored: {exc}")
                        return  # as in a cluster: a probe that cannot run never passes
                    specs.setdefault(str(c.get("name")), {})[kind] = spec
        names = [str(c.get("name")) for c in containers]
        started_at = asyncio.get_running_loop().time()
        async with httpx.AsyncClient() as client:
            watches = [asyncio.create_task(self._watch_container(n, specs.get(n, {}), containers, plan, client,
                                                                 started_at)) for n in names]
            try:
                await asyncio.gather(*watches)
            finally:
                for task in watches:
                    task.cancel()
                await asyncio.gather(*watches, return_exceptions=True)

    async def _watch_container(self, name: str, specs: dict[str, probes.ProbeSpec], containers, plan, client,
                               started_at: float) -> None:
        def check(spec: probes.ProbeSpec) -> probes.Check:
            if spec.handler == "httpGet":
                return lambda: probes.check_http(spec, client)
            if spec.handler == "tcpSocket":
                return lambda: probes.check_tcp(spec)
            container = next(c for c in containers if str(c.get("name")) == name)
            mapping = pods.build_path_map(container, plan, None)
            argv = pods.build_argv({"name": name, "command": list(spec.command)}, mapping, ports=self.state.ports,
                                   has_gpu=self.ctx.has_gpu)
            env = {k: pods.rewrite_paths(v, mapping) for k, v in self._env(container).items()}
            cwd = str(self.ctx.volumes_root / "pods" / self.namespace / self.name)
            return lambda: probes.check_exec(spec, argv, env, cwd)

        def report(spec: probes.ProbeSpec) -> probes.Report:
            return lambda why: self._event("Warning", "Unhealthy", f"{spec.title} probe failed: {why}")

        def set_ready(ready: bool) -> None:
            self.state.container_ready[name] = ready
            self._set(ready=all(self.state.container_ready.get(str(c.get("name"))) for c in containers))

        if (startup := specs.get("startup")) and not await probes.wait_started(startup, check(startup),
                                                                              report(startup)):
            return await self._kill(name, startup)
        self.state.container_started[name] = True
        readiness = specs.get("readiness")
        tracker = (asyncio.create_task(probes.track_ready(readiness, check(readiness), set_ready, report(readiness),
                                                          started_at)) if readiness else None)
        if tracker is None:
            set_ready(True)
        try:
            if liveness := specs.get("liveness"):
                await probes.wait_dead(liveness, check(liveness), report(liveness), started_at)
                return await self._kill(name, liveness)
            await asyncio.Event().wait()  # readiness only: until the attempt ends
        finally:
            if tracker is not None:
                tracker.cancel()

    async def _kill(self, name: str, spec: probes.ProbeSpec) -> None:
        """A failed liveness or startup probe: stop the pod's processes (grace, then SIGKILL) to restart."""
        self._event("Normal", "Killing", f"Container {name} failed {spec.kind} probe, will be restarted")
        set_ready = dict.fromkeys(self.state.container_ready, False)
        self._set(ready=False, container_ready=set_ready)
        grace = spec.grace_s if spec.grace_s is not None else self.grace_s
        await asyncio.gather(*(processes.stop(p, grace) for p in list(self._procs)))


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
