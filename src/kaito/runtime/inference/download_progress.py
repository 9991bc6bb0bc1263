"""Model download progress as Prometheus gauges, and a /metrics answer while the model loads.

KAITO v0.12 exports `kaito_model_download_speed_bytes_per_second` and
`kaito_model_download_remaining_seconds` (-1 unknown, 0 done) so a dashboard shows a big download
moving. We measure the same way: the bytes under the model's folder of the Hugging Face cache,
sampled every 2 s and averaged over the last 5 samples; the download is done when the cache holds
the model and no `*.incomplete` blob is left. The expected size comes from the Hub when it can be
asked; offline, the remaining time is -1 until the download is done.

While the engine loads, the HTTP server is not up yet; `LoadingServer` answers on the already bound
port from a thread: `/metrics` with the registry, anything else 503 "the model is loading".
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

log = logging.getLogger("kaito.runtime.inference")
SAMPLE_INTERVAL_S = 2.0
WINDOW = 5


def repo_cache_dir(cache_dir: Path, model: str) -> Path:
    """The Hub cache's folder for a model id (`models--ORG--NAME`)."""
    return cache_dir / ("models--" + model.replace("/", "--"))


def bytes_on_disk(folder: Path) -> int:
    """Bytes of the real files below `folder` (snapshot symlinks point at blobs, counted once)."""
    if not folder.is_dir():
        return 0
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def download_unfinished(folder: Path) -> bool:
    blobs = folder / "blobs"
    try:
        return any(p.name.endswith(".incomplete") for p in blobs.iterdir())
    except OSError:
        return False


def expected_bytes(model: str, token: str | None) -> int | None:
    """The model repo's total size on the Hub, or None (offline, private, unknown)."""
    try:
        from huggingface_hub import HfApi

        info = HfApi(token=token).model_info(model, files_metadata=True)
        total = sum(s.size or 0 for s in info.siblings or ())
        return total or None
    except Exception as exc:  # offline or gated: the remaining time is then unknown (-1)
        log.debug("model size unknown for %s: %s", model, exc)
        return None


class DownloadProgress:
    """Publishes KAITO's two download gauges while a background thread watches the cache."""

    def __init__(self, registry: CollectorRegistry, *, model: str, cache_dir: Path, token: str | None = None,
                 interval: float = SAMPLE_INTERVAL_S) -> None:
        self.speed = Gauge("kaito_model_download_speed_bytes_per_second",
                           "Model download speed in bytes per second", registry=registry)
        self.remaining = Gauge("kaito_model_download_remaining_seconds",
                               "Estimated seconds left for the model download; -1 when unknown, 0 when done",
                               registry=registry)
        self.model, self.cache_dir, self.token, self.interval = model, cache_dir, token, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if os.path.isabs(self.model) or Path(self.model).is_dir():  # local weights: nothing to download
            self._publish(0.0, 0.0)
            return
        self.remaining.set(-1)
        self._thread = threading.Thread(target=self._watch, name="kaito-download-progress", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        """The engine is loaded: whatever was to download is here."""
        self._stop.set()
        self._publish(0.0, 0.0)

    def _publish(self, speed: float, remaining: float) -> None:
        self.speed.set(max(speed, 0.0))
        self.remaining.set(remaining)

    def _watch(self) -> None:
        total = expected_bytes(self.model, self.token)
        folder = repo_cache_dir(self.cache_dir, self.model)
        samples: collections.deque[float] = collections.deque(maxlen=WINDOW)
        last_size, last_time = bytes_on_disk(folder), time.monotonic()
        while not self._stop.is_set():
            size = bytes_on_disk(folder)
            if size > 0 and not download_unfinished(folder):
                log.info("model %s is in the cache (%.2f GiB)", self.model, size / 2**30)
                self._publish(0.0, 0.0)
                return
            if self._stop.wait(self.interval):
                return
            now = time.monotonic()
            size = bytes_on_disk(folder)
            samples.append((size - last_size) / max(now - last_time, 1e-6))
            last_size, last_time = size, now
            speed = sum(samples) / len(samples)
            if total is None or speed <= 0:
                self._publish(speed, -1.0)
            else:
                self._publish(speed, max(total - size, 0) / speed)
            log.info("downloading %s: %.1f MiB on disk, %.1f MiB/s", self.model, size / 2**20, speed / 2**20)


class LoadingServer:
    """A thread answering on the server's bound socket until the real app takes over."""

    def __init__(self, sock: socket.socket, registry: CollectorRegistry) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?", 1)[0] == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                else:
                    self._send(503, json.dumps({"detail": "the model is loading"}).encode(), "application/json")

            do_POST = do_GET  # noqa: N815

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self._httpd.socket.close()
        self._httpd.socket = sock.dup()  # same listening socket; closing ours leaves the server's open
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="kaito-loading-server", daemon=True)
        self._running = False

    def start(self) -> None:
        self._thread.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._httpd.shutdown()
            self._httpd.server_close()
