"""The local control plane: store, controller manager, node provisioner and pod runner in one process.

This is what `kaito up` runs. The controller is the very one that runs in clusters (ARCHITECTURE
rule 7), configured to provision nodes (the local provisioner answers its NodeClaims) and to requeue
quickly, since local nodes and processes come up in seconds. One process per state directory: an
exclusive lock on `$KAITO_HOME/controlplane.lock` (released by the kernel even after a SIGKILL), and
a pidfile for `kaito down`. On SIGTERM/SIGINT every pod process is stopped before it exits.
It says "Ready" (`planestate`) only once its store opened, checked in full, and its controller
started, and keeps a heartbeat while it runs; a start that fails records its one-line reason there.
`start_detached` and `stop` are what `kaito up --detach` and `kaito down` do to that process.
As the chart does in a cluster, the plane keeps KAITO's `inference-params-template` ConfigMap (from
`kaito.api`'s package data) in its release namespace, `kaito-workspace`, beside `kaito-local-cluster`,
which records the interpreter its vLLM pods run (`kaito.cluster.local.vllm_runtime`; none: no vLLM
here, and its controller runs v1beta1 Workspaces that name no runtime on transformers).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kaito.cluster import errors
from kaito.operator import planestate
from kaito.operator.signals import install_stop_signals

log = logging.getLogger("kaito.local")

STORE_FILE = "store.db"
PID_FILE = "controlplane.pid"
LOCK_FILE = "controlplane.lock"
LOG_FILE = "controlplane.log"
DASHBOARD_URL_FILE = "dashboard.url"
ENDPOINTS_FILE = "endpoints.json"  # InferenceSet → its local gateway URL, while the plane runs
RELEASE_NAMESPACE = "kaito-workspace"  # KAITO's documented release namespace, where the chart's ConfigMaps live


def build_inference_template() -> dict:
    """KAITO's default runtime-parameter ConfigMap, byte for byte the chart's (kaito.api package data)."""
    from importlib import resources

    from kaito.api.validation.inference_config import CONFIG_KEY, TEMPLATE_NAME

    text = resources.files("kaito.api").joinpath("templates/inference_config.yaml").read_text(encoding="utf-8")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": TEMPLATE_NAME, "namespace": RELEASE_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "kaito"}},
            "data": {CONFIG_KEY: text}}


def build_local_admission(vllm_available: bool = True):
    """What the local cluster's API server judges every Workspace write with (`LocalCluster(admission=)`):
    the one entry point, the catalog's facts, and this plane's settings (URLs on this machine are
    the user's own, nodes are provisioned; `vllm_available`: whether it runs vLLM pods, which decides
    the runtime, and so the option names, a v1beta1 Workspace is judged for). The CLI opens the store
    with the same, passing what the plane recorded."""
    import functools

    from kaito.api.admission import AdmissionOptions, admit
    from kaito.api.validation import UrlPolicy
    from kaito.catalog.facts import build_catalog_facts

    options = AdmissionOptions(url_policy=UrlPolicy.ALLOW_LOCAL, release_namespace=RELEASE_NAMESPACE,
                               vllm_available=vllm_available)
    return functools.partial(admit, facts=build_catalog_facts("azure"), options=options)


def default_home() -> Path:
    """`$KAITO_HOME`, else kaito's folder in the user's data dir."""
    env = os.environ.get("KAITO_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("kaito"))


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def store(self) -> Path:
        return self.home / STORE_FILE

    @property
    def pidfile(self) -> Path:
        return self.home / PID_FILE

    @property
    def lockfile(self) -> Path:
        return self.home / LOCK_FILE

    @property
    def log(self) -> Path:
        return self.home / "logs" / LOG_FILE

    @property
    def endpoints(self) -> Path:
        """Where the running control plane keeps each InferenceSet's gateway URL (`kaito endpoint` reads it)."""
        return self.home / ENDPOINTS_FILE

    @property
    def state(self) -> Path:
        """The plane's state file and heartbeat (`planestate`)."""
        return self.home / planestate.STATE_FILE

    @property
    def dashboard_url(self) -> Path:
        """Where the running control plane writes its dashboard's URL (`kaito dashboard` reads it)."""
        return self.home / DASHBOARD_URL_FILE


def resolve_paths(home: Path | None) -> Paths:
    """The state paths of `home` (default: `default_home()`), absolute."""
    return Paths((home or default_home()).expanduser().resolve())


def running_pid(paths: Paths) -> int | None:
    """The pid of the control plane of `paths.home` if one runs (it holds the lock), else None."""
    if not paths.lockfile.exists():
        return None
    with open(paths.lockfile, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return int(paths.pidfile.read_text().strip())
            except (OSError, ValueError):
                return -1  # running, pid not yet written
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def observe_plane(paths: Paths) -> planestate.PlaneState:
    """Whether a plane runs for `paths`, is ready, and is alive (its heartbeat), from its files."""
    return planestate.compute_state(paths.home, running_pid(paths), planestate.read_state(paths.state))


class AlreadyRunning(Exception):
    pass


class StartFailed(Exception):
    """The plane could not start; `reason` is one line (the log has any traceback)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_dashboard_url(paths: Paths) -> str | None:
    """The dashboard URL of the control plane running for `paths`, or None (none runs, or no dashboard)."""
    if running_pid(paths) is None:
        return None
    try:
        return paths.dashboard_url.read_text().strip() or None
    except OSError:
        return None


def read_set_endpoints(paths: Paths) -> dict[str, str]:
    """`namespace/name` → gateway URL of every InferenceSet the running control plane serves ({} when
    none runs: the URLs of a stopped plane are dead)."""
    if running_pid(paths) is None:
        return {}
    try:
        found = json.loads(paths.endpoints.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


class ControlPlane:
    def __init__(self, home: Path, *, requeue_s: float = 1.0, dashboard_port: int | None = None,
                 autoscaler_interval_s: float = 15.0, vllm=None) -> None:
        """`dashboard_port`: serve the dashboard on 127.0.0.1 at this port (0: any free one; taken:
        any free one too); None: no dashboard. `autoscaler_interval_s`: how often InferenceSet
        autoscalers look (KEDA's pollingInterval, 15 s as keda-kaito-scaler sets it). `vllm`: the
        `VllmRuntime` chosen for vLLM pods (None: chosen here from the environment,
        `vllm_runtime.find_vllm_runtime`)."""
        self.paths = Paths(Path(home).resolve())
        self.requeue_s = requeue_s
        self.dashboard_port = dashboard_port
        self.autoscaler_interval_s = autoscaler_interval_s
        self.vllm = vllm
        self.sets = None
        self.dashboard_url: str | None = None
        self.cluster = None
        self.runner = None
        self.machine = None
        self._lock_file = None

    def lock(self) -> None:
        """Take the state directory's lock. `AlreadyRunning`; `StateNotAccessible` (one line) when
        `KAITO_HOME` is not a writable folder."""
        from kaito.cluster.local import storefile

        storefile.ensure_dir(self.paths.home)
        try:
            self._lock_file = open(self.paths.lockfile, "a+")  # noqa: SIM115 - held for the process's life
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise AlreadyRunning(str(running_pid(self.paths))) from exc
            self.paths.pidfile.write_text(f"{os.getpid()}\n")
            planestate.write_state(self.paths.state, os.getpid(), planestate.Phase.STARTING)
        except OSError as exc:
            raise storefile.not_accessible(self.paths.home, exc.strerror or str(exc)) from None

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until `stop` is set. `StartFailed` (its reason also in the state file) when the store
        cannot be opened or the controller cannot start; `on_ready` runs once both are done."""
        try:
            manager, tasks, dashboard = await self._start()
        except Exception as exc:
            reason = str(exc) if isinstance(exc, errors.LocalStateError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, errors.LocalStateError):
                log.exception("the local control plane failed to start")
            with contextlib.suppress(OSError):
                planestate.write_state(self.paths.state, os.getpid(), planestate.Phase.FAILED, reason)
            raise StartFailed(reason) from None
        planestate.write_state(self.paths.state, os.getpid(), planestate.Phase.READY)
        tasks.append(asyncio.create_task(planestate.keep_beating(self.paths.state), name="heartbeat"))
        log.info("local control plane up (pid %d), state in %s, machine: %s", os.getpid(), self.paths.home,
                 self.machine.describe())
        if on_ready is not None:
            on_ready()
        try:
            waiter = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiter and task.exception() is not None:
                    log.error("%s stopped: %s", task.get_name(), task.exception())
            waiter.cancel()
        finally:
            log.info("stopping: pod processes, runner, provisioner, controller")
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await asyncio.wait_for(manager.stop(), 10)
            if dashboard is not None:
                dashboard.stop()
            await self.cluster.close()
            for path in (self.paths.dashboard_url, self.paths.endpoints):
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                self.paths.pidfile.unlink()
            with contextlib.suppress(OSError):
                self.paths.state.unlink()

    async def _start(self):
        """Open the store (checked in full), start provisioner, runner, snapshots, dashboard and
        controller; (manager, tasks, dashboard). Whatever started is stopped again if a step fails."""
        from kaito.api.validation import UrlPolicy
        from kaito.cluster.local import LocalCluster, snapshots, vllm_runtime
        from kaito.cluster.local.provisioner import LocalProvisioner, read_machine_facts
        from kaito.cluster.local.runner import LocalRunner
        from kaito.cluster.local.services import LocalServiceEndpoints
        from kaito.controller.manager import Manager, build_default_controllers
        from kaito.controller.settings import Settings
        from kaito.manifests import images
        from kaito.operator.local_sets import LocalInferenceSets

        vllm = self.vllm or vllm_runtime.find_vllm_runtime(None, os.environ)
        self.cluster = LocalCluster(self.paths.store, check="full",
                                    admission=build_local_admission(vllm_available=vllm.available))
        tasks: list[asyncio.Task] = []
        dashboard = None
        try:
            self.machine = read_machine_facts()
            await self.cluster.apply(build_inference_template(), field_manager="kaito")
            await self.cluster.apply(vllm_runtime.build_configmap(vllm), field_manager="kaito")
            # This machine is the cluster: a dataset it serves on 127.0.0.1 is the user's own.
            settings = Settings(provisioner="karpenter", pending_requeue_s=self.requeue_s,
                                url_policy=UrlPolicy.ALLOW_LOCAL, release_namespace=RELEASE_NAMESPACE,
                                vllm_available=vllm.available)
            controllers = build_default_controllers(self.cluster, settings, endpoints=LocalServiceEndpoints())
            manager = Manager(self.cluster, settings, controllers=controllers, resync_period=30.0)
            provisioner = LocalProvisioner(self.cluster, self.machine, resync_s=5.0)
            self.runner = LocalRunner(self.cluster, self.paths.home, is_runtime_image=images.is_runtime_image,
                                      has_gpu=bool(self.machine.gpus), vllm_python=vllm.python)
            log.info("vLLM: %s", vllm.describe())
            with contextlib.suppress(OSError):
                self.paths.endpoints.unlink()  # a previous plane's gateways are gone
            self.sets = LocalInferenceSets(self.cluster, interval_s=self.autoscaler_interval_s,
                                           on_change=self._write_endpoints)
            tasks += [asyncio.create_task(provisioner.run(), name="provisioner"),
                      asyncio.create_task(self.runner.run(), name="runner"),
                      asyncio.create_task(self.sets.run(), name="inferenceset-gateways"),
                      asyncio.create_task(snapshots.keep_snapshots(self.paths.store), name="snapshots")]
            dashboard = self._start_dashboard(tasks)
            await manager.start()
        except BaseException:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if dashboard is not None:
                dashboard.stop()
            await self.cluster.close()
            raise
        return manager, tasks, dashboard

    def _write_endpoints(self, endpoints: dict[str, str]) -> None:
        """Keep `endpoints.json` whole at every moment (written beside, then renamed over)."""
        part = self.paths.endpoints.with_suffix(".json.part")
        part.write_text(json.dumps(endpoints, indent=1) + "\n")
        os.replace(part, self.paths.endpoints)

    def _start_dashboard(self, tasks: list[asyncio.Task]):
        """The dashboard's server and collector (a task in `tasks`); its URL in `paths.dashboard_url`."""
        with contextlib.suppress(OSError):
            self.paths.dashboard_url.unlink()
        if self.dashboard_port is None:
            return None
        from kaito.operator.dashboard.collector import Collector
        from kaito.operator.dashboard.server import DashboardServer

        collector = Collector(self.cluster)
        try:
            server = DashboardServer(collector, port=self.dashboard_port)
        except OSError:  # the port is taken (another kaito up, another program): any free one will do
            server = DashboardServer(collector, port=0)
        server.start()
        tasks.append(asyncio.create_task(collector.run(), name="dashboard"))
        self.dashboard_url = server.url
        self.paths.dashboard_url.write_text(server.url + "\n")
        log.info("dashboard: %s", server.url)
        return server


def configure_logging(log_file: Path | None) -> None:
    """Plain log lines to `log_file` (the live table owns the terminal) or to stderr."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        filename=str(log_file) if log_file is not None else None)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # readiness probes would flood the log


def install_local_stop_signals(stop: asyncio.Event) -> None:
    """Ctrl-C, `kaito down` and a closed terminal all stop the plane and its pod processes."""
    install_stop_signals(stop, (signal.SIGTERM, signal.SIGINT, signal.SIGHUP))


@dataclass(frozen=True, kw_only=True)
class Started:
    """What `start_detached` found: the pid serving, or why it is not."""

    pid: int | None
    exit_code: int | None = None  # the process exited at start-up with this code
    reason: str | None = None  # and gave this one-line reason
    timed_out: bool = False


def start_detached(paths: Paths, timeout_s: float = 60.0, dashboard_port: int | None = None,
                   autoscaler_interval_s: float | None = None, vllm_python: str | None = None) -> Started:
    """`kaito up --detach`: the control plane in its own session, logging to `paths.log`; waits until
    it says Ready (its store opened and checked, its controller started: `planestate`), or exits
    (with the reason it recorded), or `timeout_s` passes. `StateNotAccessible` when `paths.home` or
    its log folder cannot be made. `vllm_python`: passed on as `--vllm-python`."""
    from kaito.cluster.local import storefile

    storefile.ensure_dir(paths.home)
    storefile.ensure_dir(paths.log.parent)
    env = {**os.environ, "KAITO_HOME": str(paths.home)}
    dashboard = ["--no-dashboard"] if dashboard_port is None else ["--dashboard-port", str(dashboard_port)]
    if vllm_python:
        dashboard += ["--vllm-python", vllm_python]
    if autoscaler_interval_s is not None:
        dashboard += ["--autoscaler-interval", str(autoscaler_interval_s)]
    try:
        log_file = open(paths.log, "ab")  # noqa: SIM115 - closed below, once the child holds it
    except OSError as exc:
        raise storefile.not_accessible(paths.log, exc.strerror or str(exc)) from None
    with log_file:
        proc = subprocess.Popen([sys.executable, "-m", "kaito.cli.main", "up", "--no-table", "--home", str(paths.home),
                                 *dashboard],
                                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
                                start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = observe_plane(paths)
        if state.pid == proc.pid and state.ready and (dashboard_port is None or paths.dashboard_url.exists()):
            return Started(pid=proc.pid)
        if proc.poll() is not None:
            return Started(pid=None, exit_code=proc.returncode, reason=planestate.read_failure(paths.state, proc.pid))
        time.sleep(0.1)
    return Started(pid=None, timed_out=True)


@dataclass(frozen=True, kw_only=True)
class Stopped:
    """What `stop` did: the plane's pid (None: none ran), whether it had to be killed, and which
    leftover pod processes it stopped."""

    pid: int | None
    killed: bool = False
    leftovers: tuple[str, ...] = ()


DOWN_TIMEOUT_S = 45.0  # above Kubernetes' default grace period (30 s), which the plane gives each pod


def stop(paths: Paths, timeout_s: float = DOWN_TIMEOUT_S) -> Stopped:
    """`kaito down`: SIGTERM the plane (SIGKILL after `timeout_s`), then stop any stray pod process."""
    from kaito.cluster.local import processes

    pid = running_pid(paths)
    if pid is None or pid < 0:
        return Stopped(pid=None, leftovers=tuple(processes.kill_strays(paths.home)))
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and processes.is_alive(pid):
        time.sleep(0.1)
    killed = processes.is_alive(pid)
    if killed:
        os.kill(pid, signal.SIGKILL)
    return Stopped(pid=pid, killed=killed, leftovers=tuple(processes.kill_strays(paths.home)))
