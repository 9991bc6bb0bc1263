"""How every kaito process is told to stop: a signal sets an `asyncio.Event` the process awaits.

Both the in-cluster operator (SIGTERM from the kubelet) and the local control plane (Ctrl-C,
`kaito down`, a closed terminal) shut down gracefully from that one event, never from inside a
signal handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_stop_signals(stop: asyncio.Event, signals: Iterable[signal.Signals] = STOP_SIGNALS) -> None:
    """Set `stop` on each of `signals` (in the running loop; a no-op where signals are not supported)."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
