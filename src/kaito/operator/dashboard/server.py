"""The dashboard's HTTP server: the page, its two assets and `/api/state`, with the standard library.

Threaded like the operator's probe server (`kaito.operator.metrics`), so the page answers while the
event loop is busy reconciling; the JSON it serves is the collector's latest snapshot. Read-only on
purpose: any other method is 405, and writes stay with `kaito apply/delete`, which validate first
and run with the user's own rights. Bound to loopback by default; there, a request whose Host is not
a loopback name is refused, so a web page elsewhere cannot read it through DNS rebinding.
"""

from __future__ import annotations

import http.server
import ipaddress
import threading
from importlib import resources
from typing import Any

from kaito.operator.dashboard.collector import Collector

ASSETS = {"/": ("index.html", "text/html; charset=utf-8"),
          "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
          "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
DEFAULT_PORT = 8470


def _read_asset(name: str) -> bytes:
    return resources.files("kaito.operator.dashboard").joinpath("static", name).read_bytes()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _host_name(header: str) -> str:
    """The host part of a Host header: `127.0.0.1:8470` → 127.0.0.1, `[::1]:80` → ::1."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class DashboardServer:
    """Serves the dashboard on (host, port); port 0 picks a free one (`url` says which)."""

    def __init__(self, collector: Collector, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        handler = _make_handler(collector, check_host=_is_loopback(host))
        self._server = http.server.ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="dashboard", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _make_handler(collector: Collector, *, check_host: bool) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if check_host and _host_name(self.headers.get("Host", "")) not in LOOPBACK_NAMES:
                self._send(403, b"the dashboard answers only to localhost names\n", "text/plain")
                return
            path = self.path.split("?", 1)[0]
            if path == "/api/state":
                self._send(200, collector.read_snapshot(), "application/json", cache=False)
            elif path in ASSETS:
                name, content_type = ASSETS[path]
                self._send(200, _read_asset(name), content_type)
            elif path == "/healthz":
                self._send(200, b"ok", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _refuse(self) -> None:
            self._send(405, b"the dashboard is read-only: use kaito apply / kaito delete\n", "text/plain",
                       extra={"Allow": "GET"})

        do_POST = do_PUT = do_PATCH = do_DELETE = _refuse  # noqa: N815

        def _send(self, status: int, body: bytes, content_type: str, *, cache: bool = True,
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache" if cache else "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # polled every second: stay quiet
            return

    return Handler
