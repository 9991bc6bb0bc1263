"""Multi-node vLLM pods: a Ray cluster across the StatefulSet, the server on pod 0, and their probes.

KAITO v0.12 runs vLLM's example `multi-node-serving.sh` (pod 0: Ray head, wait for every node, then
the server; other pods: Ray workers) and a `multi-node-health-check.py` for exec probes. This module
does the same with one entry point:

    python -m kaito.runtime.inference.multinode run --pod-index=$(POD_INDEX) --nodes=N \\
        --leader-address=<ws>-0.<ws>-headless.<ns>.svc.cluster.local --ray-port=6379 -- <server flags>
    python -m kaito.runtime.inference.multinode probe readiness|liveness --leader-address=... --port=5000

Probes: on pod 0 both ask the server's `/health` (vLLM's, which fails once its engine, Ray workers
included, is dead); on the others readiness always passes (they serve no HTTP) and liveness asks
Ray whether the cluster is still reachable. Ray itself is imported only where a Ray cluster runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence

log = logging.getLogger("kaito.runtime.inference.multinode")
WAIT_LOG_EVERY_S = 10.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kaito.runtime.inference.multinode", allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start this pod's part: Ray head + server (pod 0) or Ray worker")
    probe = commands.add_parser("probe", help="exec probe of a multi-node pod")
    probe.add_argument("mode", choices=["readiness", "liveness"])
    for sub in (run, probe):
        sub.add_argument("--pod-index", type=int, default=int(os.environ.get("POD_INDEX", "0") or 0))
        sub.add_argument("--leader-address", required=True)
        sub.add_argument("--ray-port", type=int, default=6379)
    run.add_argument("--nodes", type=int, required=True)
    run.add_argument("server", nargs=argparse.REMAINDER, help="-- then the model server's flags")
    probe.add_argument("--port", type=int, default=5000)
    return parser


def build_head_command(ray_port: int) -> list[str]:
    return ["ray", "start", "--head", f"--port={ray_port}", "--dashboard-host=0.0.0.0"]


def build_worker_command(leader: str, ray_port: int) -> list[str]:
    return ["ray", "start", f"--address={leader}:{ray_port}", "--block"]


def build_server_command(server_flags: Sequence[str]) -> list[str]:
    flags = list(server_flags)
    if flags[:1] == ["--"]:
        flags = flags[1:]
    return [sys.executable, "-m", "kaito.runtime.inference", *flags]


def count_ray_nodes() -> int:
    import ray

    ray.init(address="auto", logging_level=logging.WARNING)
    try:
        return sum(1 for node in ray.nodes() if node.get("Alive"))
    finally:
        ray.shutdown()


def wait_for_nodes(nodes: int, count: Callable[[], int], sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic) -> None:
    """Block until `nodes` Ray nodes are alive, saying how many so far every few seconds."""
    last_said = -WAIT_LOG_EVERY_S
    while (alive := count()) < nodes:
        if clock() - last_said >= WAIT_LOG_EVERY_S:
            log.info("waiting for the Ray cluster: %d of %d nodes", alive, nodes)
            last_said = clock()
        sleep(2.0)
    log.info("Ray cluster complete: %d nodes", alive)


def run(args: argparse.Namespace) -> int:
    if args.pod_index != 0:
        command = build_worker_command(args.leader_address, args.ray_port)
        while True:  # the head may not be up yet; the worker's own exit ends the pod otherwise
            code = subprocess.call(command)
            log.warning("ray worker exited with %d; joining %s again in 5 s", code, args.leader_address)
            time.sleep(5)
    subprocess.run(build_head_command(args.ray_port), check=True)
    wait_for_nodes(args.nodes, count_ray_nodes)
    server = build_server_command(args.server)
    os.execv(server[0], server)  # the server becomes the container's main process


def http_ok(url: str, timeout: float = 4.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status == 200
    except OSError:
        return False


def ray_ok(leader: str, ray_port: int) -> bool:
    return subprocess.call(["ray", "health-check", f"--address={leader}:{ray_port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def probe(mode: str, pod_index: int, *, server_ok: Callable[[], bool], cluster_ok: Callable[[], bool]) -> int:
    """Exit code of the probe: 0 healthy, 1 not."""
    if pod_index == 0:
        return 0 if server_ok() else 1
    if mode == "readiness":
        return 0
    return 0 if cluster_ok() else 1


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "probe":
        return probe(args.mode, args.pod_index,
                     server_ok=lambda: http_ok(f"http://127.0.0.1:{args.port}/health"),
                     cluster_ok=lambda: ray_ok(args.leader_address, args.ray_port))
    try:
        return run(args)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"error: cannot start this pod's part of the Ray cluster: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
