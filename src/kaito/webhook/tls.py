"""Where the webhook's certificate comes from: a mounted directory, or self-managed in a Secret.

Mounted (cert-manager, or a Secret the user made): `tls.crt`/`tls.key` in `--cert-dir`.
Self-managed (the default, as KAITO's knative webhook does): the operator keeps a CA and a serving
certificate in Secret `workspace-webhook-cert`, creating or renewing it when needed, writes the
files into `--cert-dir`, and patches the caBundle of the Validating- and MutatingWebhookConfiguration
(both named by `--webhook-configuration`) so the API server trusts it — and the `spec.conversion`
(Service and caBundle) of the Workspace, InferenceSet and RAGEngine CRDs, so the API server can reach
the conversion webhook with the same certificate. Several replicas may start at once: the Secret is created with `force=False`
and updated with its resourceVersion, so exactly one bundle wins and the others adopt it.
"""

from __future__ import annotations

import base64
import logging
import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaito.api import crd, crd_kinds
from kaito.cluster import errors, protocol
from kaito.webhook import certs

log = logging.getLogger(__name__)

VALIDATING_WEBHOOK_CONFIGURATION = protocol.ResourceKind(
    "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
    namespaced=False,
)
MUTATING_WEBHOOK_CONFIGURATION = protocol.ResourceKind(
    "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations",
    namespaced=False,
)
CUSTOM_RESOURCE_DEFINITION = protocol.ResourceKind(
    "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False,
)
DEFAULT_SECRET = "workspace-webhook-cert"
CERT_FIELD_MANAGER = "kaito-webhook-cert"
# File names: the kubernetes.io/tls Secret layout, which cert-manager and `kubectl create secret tls` use.
CERT_FILE, KEY_FILE, CA_FILE = "tls.crt", "tls.key", "ca.crt"


@dataclass(frozen=True)
class SelfManagedCerts:
    namespace: str
    service: str
    secret_name: str = DEFAULT_SECRET
    webhook_configuration: str = ""  # empty: do not patch any caBundle (tests, manual setups)
    # The CRDs whose conversion webhook this server is; kept only when a webhook_configuration is too.
    conversion_crds: tuple[str, ...] = (crd.CRD_NAME, *crd_kinds.CRD_NAMES)
    # Who writes: each replica applies under its own field manager, so that of two replicas
    # creating the Secret at once the second gets Conflict (same-manager applies never conflict).
    identity: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def field_manager(self) -> str:
        return f"{CERT_FIELD_MANAGER}/{self.identity}"


def build_server_context(cert_dir: Path) -> ssl.SSLContext:
    """A TLS server context from `cert_dir`; reloading the same context picks up rotated files."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    load_cert_chain(ctx, cert_dir)
    return ctx


def load_cert_chain(ctx: ssl.SSLContext, cert_dir: Path) -> None:
    cert, key = cert_dir / CERT_FILE, cert_dir / KEY_FILE
    if not cert.is_file() or not key.is_file():
        raise FileNotFoundError(f"webhook certificate not found: expected {cert} and {key}")
    ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))


def write_cert_dir(bundle: certs.CertBundle, cert_dir: Path) -> None:
    """Write the bundle as tls.crt/tls.key/ca.crt; each file replaced atomically, key private."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    for name, data, mode in ((CERT_FILE, bundle.server_cert, 0o644), (KEY_FILE, bundle.server_key, 0o600),
                             (CA_FILE, bundle.ca_cert, 0o644)):
        tmp = cert_dir / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.chmod(mode)
        tmp.replace(cert_dir / name)


def build_secret(cfg: SelfManagedCerts, bundle: certs.CertBundle, resource_version: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": cfg.secret_name, "namespace": cfg.namespace,
                            "labels": {"app.kubernetes.io/managed-by": "kaito"}}
    if resource_version:
        meta["resourceVersion"] = resource_version
    data = {k: base64.b64encode(v).decode() for k, v in bundle.to_secret_data().items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": data}


def bundle_from_secret(secret: dict[str, Any]) -> certs.CertBundle | None:
    try:
        raw = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        return certs.CertBundle.from_secret_data(raw)
    except (KeyError, ValueError, TypeError):
        return None


async def ensure_certificate(cluster: protocol.Cluster, cfg: SelfManagedCerts) -> certs.CertBundle:
    """The Secret's bundle, created or renewed when missing, expiring or not for this Service."""
    dns = certs.compute_dns_names(cfg.service, cfg.namespace)
    for _attempt in range(5):
        try:
            secret = await cluster.get(protocol.SECRET, cfg.secret_name, cfg.namespace)
        except errors.NotFound:
            secret = None
        bundle = bundle_from_secret(secret) if secret is not None else None
        if bundle is not None and not certs.needs_renewal(bundle, dns):
            return bundle
        fresh = certs.build_cert_bundle(dns)
        rv = (secret or {}).get("metadata", {}).get("resourceVersion")
        try:
            # Creating: force=False, so a replica racing us gets Conflict. Renewing: the
            # resourceVersion makes the write conditional on what we read.
            await cluster.apply(build_secret(cfg, fresh, rv), field_manager=cfg.field_manager,
                                force=secret is not None)
        except errors.Conflict:
            log.info("another replica wrote the webhook certificate first; using theirs")
            continue
        log.info("webhook certificate %s in Secret %s/%s", "renewed" if secret else "created",
                 cfg.namespace, cfg.secret_name)
        return fresh
    raise errors.Conflict(f"Secret {cfg.namespace}/{cfg.secret_name} kept changing; giving up for now")


async def ensure_ca_bundle(cluster: protocol.Cluster, name: str, ca_pem: bytes,
                           kind: protocol.ResourceKind = VALIDATING_WEBHOOK_CONFIGURATION) -> bool:
    """Set every webhook's `clientConfig.caBundle` in configuration `name` of `kind` (validating, or
    mutating); True when it wrote."""
    wanted = base64.b64encode(ca_pem).decode()
    protocol.register_kind(kind)  # idempotent; lets backends route the apply
    try:
        current = await cluster.get(kind, name)
    except errors.NotFound:
        log.warning("%s %s not found; caBundle not set", kind.kind, name)
        return False
    hooks = current.get("webhooks") or []
    if all((h.get("clientConfig") or {}).get("caBundle") == wanted for h in hooks):
        return False
    # The whole list, not just the caBundles: backends without listType=map merge semantics (the
    # local store, test emulators) would otherwise replace the webhooks with our fragments. The
    # resourceVersion makes it conditional, so a concurrent `helm upgrade` is never reverted.
    updated = [{**h, "clientConfig": {**(h.get("clientConfig") or {}), "caBundle": wanted}} for h in hooks]
    patch = {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": name, "resourceVersion": current.get("metadata", {}).get("resourceVersion")},
        "webhooks": updated,
    }
    if not patch["metadata"]["resourceVersion"]:
        del patch["metadata"]["resourceVersion"]
    await cluster.apply(patch, field_manager=CERT_FIELD_MANAGER, force=True)
    log.info("caBundle of %s %s updated", kind.kind, name)
    return True


async def ensure_crd_conversion(cluster: protocol.Cluster, cfg: SelfManagedCerts, ca_pem: bytes,
                                crd_name: str | None = None) -> bool:
    """Point a CRD's conversion webhook at this operator's Service, trusting `ca_pem`; True when it wrote.

    `crd_name` None: the first of `cfg.conversion_crds` (the Workspace CRD). The chart's CRDs name
    the Service of a default install with no caBundle (files under `crds/` are not templated), so
    the operator sets both. Only `spec.conversion` is applied: the rest of the CRD stays the chart's.
    """
    protocol.register_kind(CUSTOM_RESOURCE_DEFINITION)
    name = crd_name or cfg.conversion_crds[0]
    try:
        current = await cluster.get(CUSTOM_RESOURCE_DEFINITION, name)
    except errors.NotFound:
        log.warning("CustomResourceDefinition %s not found; conversion webhook not configured", name)
        return False
    wanted = crd.build_conversion(cfg.service, cfg.namespace, base64.b64encode(ca_pem).decode())
    if (current.get("spec") or {}).get("conversion") == wanted:
        return False
    patch = {
        "apiVersion": CUSTOM_RESOURCE_DEFINITION.api_version,
        "kind": CUSTOM_RESOURCE_DEFINITION.kind,
        "metadata": {"name": name},
        "spec": {"conversion": wanted},
    }
    rv = (current.get("metadata") or {}).get("resourceVersion")
    if rv:
        patch["metadata"]["resourceVersion"] = rv  # conditional: never revert a concurrent upgrade
    await cluster.apply(patch, field_manager=CERT_FIELD_MANAGER, force=True)
    log.info("conversion webhook of CustomResourceDefinition %s points at %s/%s", name,
             cfg.namespace, cfg.service)
    return True
