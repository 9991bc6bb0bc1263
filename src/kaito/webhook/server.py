"""The webhook as a running service: TLS setup, the HTTPS listener, and caBundle upkeep.

`WebhookServer.start()` gets its certificate (mounted or self-managed), listens on the webhook
port and routes `POST /validate/workspace.kaito.sh`, `/validate/inferenceset.kaito.sh` and
`/validate/ragengine.kaito.sh` (KAITO's paths) to `WorkspaceAdmission`, `POST /mutate/workspace.kaito.sh`
(the version stamp) to `kaito.webhook.mutation` and `POST /convert` (the CRDs' conversion webhook) to
`kaito.webhook.conversion`. With self-managed certificates it re-checks the Secret and the caBundles
(the Validating- and MutatingWebhookConfiguration's and each CRD's conversion webhook's) every few
minutes, because a `helm upgrade` resets them and
certificates expire. It runs in every replica, leader or not: admission and conversion must not wait
for an election.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from kaito.api.admission import AdmissionOptions
from kaito.api.crd import CONVERSION_PATH
from kaito.api.facts import ModelFacts
from kaito.cluster import errors, protocol
from kaito.webhook import admission, conversion, http, mutation, tls

log = logging.getLogger(__name__)

VALIDATE_PATH = "/validate/workspace.kaito.sh"
MUTATE_PATH = "/mutate/workspace.kaito.sh"
VALIDATE_INFERENCESET_PATH = "/validate/inferenceset.kaito.sh"
VALIDATE_RAGENGINE_PATH = "/validate/ragengine.kaito.sh"
# One handler for all: it dispatches on the object's kind, so a misrouted review is still judged right.
VALIDATE_PATHS = (VALIDATE_PATH, VALIDATE_INFERENCESET_PATH, VALIDATE_RAGENGINE_PATH)
CONVERT_PATH = CONVERSION_PATH


@dataclass(frozen=True)
class WebhookConfig:
    host: str = "0.0.0.0"
    port: int = 9443
    cert_dir: Path = Path("/tmp/k8s-webhook-server/serving-certs")
    self_managed: tls.SelfManagedCerts | None = None
    release_namespace: str | None = None
    recheck_interval: float = 300.0
    admission: AdmissionOptions | None = None  # the operator's node provisioning and feature gates


def make_configmap_reader(cluster: protocol.Cluster) -> admission.ConfigMapReader:
    async def read(namespace: str, name: str):
        try:
            cm = await cluster.get(protocol.CONFIGMAP, name, namespace)
        except errors.NotFound:
            return None
        data = cm.get("data")
        return data if isinstance(data, dict) else {}

    return read


def make_node_lister(cluster: protocol.Cluster) -> admission.NodeLister:
    async def list_nodes(selector):
        nodes = await cluster.list(protocol.NODE, labels=dict(selector))
        return [(node.get("metadata") or {}).get("labels") or {} for node in nodes.items]

    return list_nodes


class WebhookServer:
    def __init__(self, cluster: protocol.Cluster, facts: ModelFacts, cfg: WebhookConfig,
                 on_result=None) -> None:
        self._cluster = cluster
        self._cfg = cfg
        self._admission = admission.WorkspaceAdmission(
            facts, make_configmap_reader(cluster), cfg.release_namespace, on_result,
            options=cfg.admission, list_nodes=make_node_lister(cluster))
        self._ctx: ssl.SSLContext | None = None
        self._server: http.HttpServer | None = None
        self._upkeep: asyncio.Task | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.port

    @property
    def serving(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._cfg.self_managed is not None:
            await self._refresh_self_managed()
        self._ctx = tls.build_server_context(self._cfg.cert_dir)
        self._server = http.HttpServer(self.handle, self._cfg.host, self._cfg.port, self._ctx)
        await self._server.start()
        log.info("admission webhook listening", extra={"port": self._server.port, "path": VALIDATE_PATH})
        if self._cfg.self_managed is not None:
            self._upkeep = asyncio.create_task(self._keep_certificates(), name="webhook-cert-upkeep")

    async def stop(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def handle(self, request: http.Request) -> http.Response:
        path = request.path.split("?", 1)[0]
        if path == "/healthz" and request.method == "GET":
            return http.Response(200, b'{"status":"ok"}')
        if path not in (*VALIDATE_PATHS, MUTATE_PATH, CONVERT_PATH):
            return http.Response(404, json.dumps({"error": f"no such path {path}"}).encode())
        if request.method != "POST":
            return http.Response(405, json.dumps({"error": "use POST"}).encode(), headers={"allow": "POST"})
        try:
            if path == CONVERT_PATH:
                answer = conversion.review(request.body)
            elif path == MUTATE_PATH:
                answer = mutation.review(request.body)
            else:
                answer = await self._admission.review(request.body)
        except admission.BadReview as exc:
            return http.Response(400, json.dumps({"error": str(exc)}).encode())
        return http.Response(200, json.dumps(answer).encode())

    async def _refresh_self_managed(self) -> None:
        cfg = self._cfg.self_managed
        assert cfg is not None
        bundle = await tls.ensure_certificate(self._cluster, cfg)
        tls.write_cert_dir(bundle, self._cfg.cert_dir)
        if self._ctx is not None:
            tls.load_cert_chain(self._ctx, self._cfg.cert_dir)  # new handshakes use the new certificate
        if cfg.webhook_configuration:
            await tls.ensure_ca_bundle(self._cluster, cfg.webhook_configuration, bundle.ca_cert)
            await tls.ensure_ca_bundle(self._cluster, cfg.webhook_configuration, bundle.ca_cert,
                                       kind=tls.MUTATING_WEBHOOK_CONFIGURATION)
            for name in cfg.conversion_crds:
                await tls.ensure_crd_conversion(self._cluster, cfg, bundle.ca_cert, name)

    async def _keep_certificates(self) -> None:
        while True:
            await asyncio.sleep(self._cfg.recheck_interval)
            try:
                await self._refresh_self_managed()
            except (errors.ClusterError, OSError, ssl.SSLError) as exc:
                log.warning("webhook certificate upkeep failed, retrying later: %s", exc)
