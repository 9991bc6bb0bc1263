"""Child processes of the local pod runner: started so they never outlive the control plane.

Three guards, because a model process left behind holds gigabytes and a port:
1. each child asks the kernel to SIGKILL it when the control plane dies (`PR_SET_PDEATHSIG`),
   so even a SIGKILL of `kaito up` takes its direct children along;
2. each child leads its own process group, so stopping a pod stops what its shell started too;
3. each child carries `KAITO_LOCAL_HOME`/`KAITO_LOCAL_POD` in its environment; at start-up the
   control plane kills any process of its state directory still running (`find_strays`), so a
   restart after a crash never leaves two model processes for one pod.
Also free local ports for container ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ENV_HOME = "KAITO_LOCAL_HOME"
ENV_POD = "KAITO_LOCAL_POD"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it); the child binds it right after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def is_port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


async def spawn(argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path) -> asyncio.subprocess.Process:
    """Start `argv` with its output appended to `log_path`, tied to this process's life."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return await asyncio.create_subprocess_exec(
            *argv, env=dict(env), cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
            stdout=log, stderr=asyncio.subprocess.STDOUT, preexec_fn=_die_with_parent,
        )


def is_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_group(pid: int, grace_s: float = 5.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL what is left after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline and is_alive(pid):
            time.sleep(0.05)
        if not is_alive(pid):
            return


def exit_code(returncode: int) -> int:
    """A child's exit status as a container runtime reports it: 128 + N when signal N killed it."""
    return 128 - returncode if returncode < 0 else returncode


async def stop(proc: asyncio.subprocess.Process, grace_s: float = 30.0) -> int | None:
    """Stop a child we started (its whole group): SIGTERM, `grace_s` to exit, then SIGKILL; reaps it.

    Returns its exit code. A stopped (SIGSTOPped, hung) process never acts on SIGTERM: it gets
    its grace all the same, then SIGKILL, which needs no cooperation."""
    if proc.returncode is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), grace_s if sig == signal.SIGTERM else 5.0)
                break
            except TimeoutError:
                continue
    # The group may hold grandchildren that outlived their shell.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


def read_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            out[key.decode(errors="replace")] = value.decode(errors="replace")
    return out


def find_strays(home: Path) -> dict[int, str]:
    """pid → pod of every running process started for pods of the state directory `home`."""
    home_s = str(home.resolve())
    found: dict[int, str] = {}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        env = read_environ(int(entry.name))
        if env.get(ENV_HOME) == home_s and ENV_POD in env and is_alive(int(entry.name)):
            found[int(entry.name)] = env[ENV_POD]
    return found


def kill_strays(home: Path) -> list[str]:
    """Kill leftovers of a previous control plane of `home`; returns the pods they belonged to."""
    strays = find_strays(home)
    for pid in strays:
        kill_group(pid, grace_s=3.0)
    return sorted(set(strays.values()))
