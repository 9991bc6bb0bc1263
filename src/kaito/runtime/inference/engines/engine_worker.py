"""The engine process: the transformers engine on its own interpreter, driven over a socket.

HF modelling code is Python; in the HTTP server's process it holds the GIL for about a third of
every decode step, and each step's hand-over to the event loop waits on the GIL too. So, as vLLM
splits its API server from its engine core, the server (`engine_process.ProcessEngine`) starts
this module as a child process and talks to it over a socket pair: requests and cancels one way;
load stages, the model's facts, and each step's events (one message per step, with the engine's
stats) the other way. Messages are pickles behind a 4-byte length: both ends are this package, on
one machine, over a socket nobody else holds.

The process ends when the server says `stop`, when its socket closes (the server is gone), or, on
Linux, when the server dies at all (the kernel kills it then, even in the middle of loading), so it
never outlives its server. Ctrl-C and SIGTERM are left to the server, which stops it in order.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import signal
import socket
import struct
import sys
import threading
from collections.abc import Sequence

log = logging.getLogger("kaito.runtime.inference")
FRAME = struct.Struct("!I")


def encode(message: object) -> bytes:
    """One message on the wire: its pickle, behind the pickle's length."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(payload)) + payload


class Channel:
    """The engine process's end of the socket: blocking reads on one thread, locked writes from any."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        self._lock = threading.Lock()

    def send(self, message: object) -> None:
        frame = encode(message)
        with self._lock:
            self._sock.sendall(frame)

    def receive(self) -> object | None:
        """The next message, or None once the server has closed its end."""
        header = self._file.read(FRAME.size)
        if len(header) < FRAME.size:
            return None
        (size,) = FRAME.unpack(header)
        payload = self._file.read(size)
        return pickle.loads(payload) if len(payload) == size else None


def serve(channel: Channel, settings) -> int:
    """Load the model, then run requests until `stop` or the server's end closes; the exit code."""
    from kaito.runtime.inference import engine as api
    from kaito.runtime.inference.engines.transformers_engine import TransformersEngine

    # the command reader must get the GIL soon while the batch loop runs Python: a request read late
    # misses the next prefill step and waits a whole decode step more
    sys.setswitchinterval(0.001)
    steps: list[int] = []
    gone = threading.Event()

    def publish(items: list[tuple[str, object]], stats: api.EngineStats) -> None:
        sizes = steps[:]
        steps.clear()
        if gone.is_set():
            return
        try:
            channel.send(("step", items, stats, sizes))
        except OSError:  # the server is gone; the main thread sees the end of its socket and stops
            gone.set()

    engine = TransformersEngine(settings, publish=publish)
    engine.observe_steps(steps.append)
    try:
        facts = engine.load_and_begin(lambda stage: channel.send(("stage", stage)))
    except Exception as exc:  # the server records and reports it (its log, /health, exit code)
        channel.send(("failed", str(exc) or type(exc).__name__))
        return 1
    channel.send(("ready", facts))
    while (message := channel.receive()) is not None:
        kind = message[0]
        if kind == "add":
            request = message[1]
            try:
                engine.submit(request)
            except api.EngineError as exc:
                channel.send(("step", [(request.request_id, exc)], engine.stats(), []))
        elif kind == "cancel":
            engine.cancel_now(message[1])
        elif kind == "stop":
            break
    gone.set()
    engine.stop()
    return 0


def _die_with(server_pid: int) -> None:
    """Have the kernel SIGKILL this process when the server dies (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):  # elsewhere: the end of the socket stops us, after a load
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != server_pid:  # it died before we asked
        os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Arguments: the socket's file descriptor, the server's process id."""
    from kaito.runtime.inference.settings import ServerSettings

    args = sys.argv[1:] if argv is None else list(argv)
    _die_with(int(args[1]))
    # the server owns the shutdown order (drain its requests, then `stop` us); a signal sent to the
    # whole process group (Ctrl-C, a runner's SIGTERM) must not kill the engine under open requests
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    debug = os.environ.get("DEBUG_MODE", "").lower() == "true"
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s (engine process): %(message)s")
    channel = Channel(socket.socket(fileno=int(args[0])))
    first = channel.receive()
    if first is None:
        return 0
    return serve(channel, ServerSettings.model_validate(first[1]))


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # nothing left to tear down: the server waits on this exit (a normal one takes seconds)
