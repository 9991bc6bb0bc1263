"""Run the model server inside this process on a background thread (tests, benchmarks, notebooks).

The real uvicorn server on a real socket, so clients (the `openai` library, httpx) talk HTTP to it
exactly as to `python -m kaito.runtime.inference`; port 0 picks a free port.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from kaito.runtime.inference.settings import ServerSettings


@dataclass(kw_only=True)
class RunningServer:
    base_url: str  # http://127.0.0.1:PORT
    app: object
    _server: object
    _thread: threading.Thread

    @property
    def engine(self):
        return self.app.state.engine

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the model is loaded; raise with the load error if it failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.engine.load_state()
            if state.ready:
                return
            if state.error:
                raise RuntimeError(f"model load failed: {state.error}")
            time.sleep(0.05)
        raise TimeoutError(f"model not loaded after {timeout:.0f}s")

    def stop(self, timeout: float = 15.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(settings: ServerSettings, engine=None, timeout: float = 30.0) -> RunningServer:
    """Start the server (host/port from `settings`; port 0 = any free one) and wait for its socket."""
    import uvicorn

    from kaito.runtime import limits
    from kaito.runtime.inference.app import create_app

    app = create_app(settings, engine)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                           lifespan="on", **limits.uvicorn_options(limits.MODEL_SERVER)))
    thread = threading.Thread(target=server.run, name="kaito-inference-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the inference server did not start listening")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return RunningServer(base_url=f"http://{settings.host}:{port}", app=app, _server=server, _thread=thread)
