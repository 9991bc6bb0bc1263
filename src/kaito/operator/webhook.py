"""The admission webhook as the operator runs it: built from flags, beside the controller or alone.

`kaito operator` serves the webhook in every replica next to the controller (admission must not
wait for a leader election); `kaito webhook` serves it alone. Both build it here from one settings
object, so the certificate rules (self-managed needs a Service name and a namespace) are checked
once, before anything starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaito.api.admission import AdmissionOptions
from kaito.catalog.facts import build_catalog_facts
from kaito.cluster import protocol
from kaito.operator.signals import install_stop_signals
from kaito.webhook import server, tls

DEFAULT_CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")


@dataclass(frozen=True, kw_only=True)
class WebhookSettings:
    cloud: str = "azure"
    host: str = "0.0.0.0"
    port: int = 9443
    cert_dir: Path = DEFAULT_CERT_DIR
    self_managed: bool = False  # make and keep the certificate in a Secret, patch the caBundle
    service: str | None = None  # the Service in front of the webhook: the certificate's name
    namespace: str | None = None  # the release namespace: the Secret's, the tuning templates'
    secret: str = tls.DEFAULT_SECRET
    configuration: str = ""  # Validating- and MutatingWebhookConfiguration whose caBundles to keep
    identity: str = "kaito"
    provisioner: str = "karpenter"  # byo: bring-your-own nodes (v1beta1 then wants no instanceType)

    def __post_init__(self) -> None:
        if self.self_managed and (not self.namespace or not self.service):
            raise ValueError("--self-managed-certs needs --webhook-service and the release namespace "
                             "(--lease-namespace, RELEASE_NAMESPACE, or in-cluster)")


def build_webhook_server(cluster: protocol.Cluster, settings: WebhookSettings,
                         on_result: Callable[[str, bool], None] | None = None) -> server.WebhookServer:
    """The HTTPS admission server for `settings`; `on_result(operation, allowed)` hears each answer."""
    managed = None
    if settings.self_managed:
        assert settings.namespace and settings.service  # checked by WebhookSettings
        managed = tls.SelfManagedCerts(namespace=settings.namespace, service=settings.service,
                                       secret_name=settings.secret, webhook_configuration=settings.configuration,
                                       identity=settings.identity)
    options = AdmissionOptions(auto_provisioning=settings.provisioner != "byo", release_namespace=settings.namespace)
    cfg = server.WebhookConfig(host=settings.host, port=settings.port, cert_dir=settings.cert_dir,
                               self_managed=managed, release_namespace=settings.namespace, admission=options)
    return server.WebhookServer(cluster, build_catalog_facts(settings.cloud), cfg, on_result=on_result)


def run_webhook_until_signalled(cluster: protocol.Cluster, settings: WebhookSettings,
                                report: Callable[[str], Any]) -> int:
    """`kaito webhook`: serve until SIGTERM/SIGINT; `report` hears one line on start or failure."""
    webhook = build_webhook_server(cluster, settings)

    async def main() -> int:
        stop = asyncio.Event()
        install_stop_signals(stop)
        try:
            await webhook.start()
        except Exception as exc:  # noqa: BLE001 - a missing certificate, a port in use: say so, no traceback
            report(f"cannot start: {exc}")
            await cluster.close()
            return 2
        report(f"serving on {settings.host}:{webhook.port}")
        await stop.wait()
        await webhook.stop()
        await cluster.close()
        return 0

    return asyncio.run(main())
