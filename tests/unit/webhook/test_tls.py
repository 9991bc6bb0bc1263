"""Webhook certificates: generation, renewal rules, the self-managed Secret and the caBundle.

Runs against the real local store (`LocalCluster` on a temp SQLite file), which implements the
same apply/conflict semantics as the API server for what this code relies on.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import ssl

import pytest
from cryptography import x509

from kaito.cluster import protocol
from kaito.cluster.local import LocalCluster
from kaito.webhook import certs, tls

DNS = certs.compute_dns_names("kaito-webhook", "kaito-system")


def test_bundle_is_a_ca_signed_serving_cert_for_the_service():
    bundle = certs.build_cert_bundle(DNS)
    ca = x509.load_pem_x509_certificate(bundle.ca_cert)
    cert = x509.load_pem_x509_certificate(bundle.server_cert)
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kaito-webhook.kaito-system.svc" in sans.get_values_for_type(x509.DNSName)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert not certs.needs_renewal(bundle, DNS)


def test_renewal_when_expiring_for_other_names_or_garbage():
    now = dt.datetime.now(dt.UTC)
    old = certs.build_cert_bundle(DNS, now=now - certs.VALIDITY + dt.timedelta(days=10))
    assert certs.needs_renewal(old, DNS, now=now)
    assert certs.needs_renewal(certs.build_cert_bundle(DNS), certs.compute_dns_names("other", "ns"))
    assert certs.needs_renewal(certs.CertBundle(b"x", b"y", b"z"), DNS)


def test_cert_dir_loads_into_a_tls_context(tmp_path):
    tls.write_cert_dir(certs.build_cert_bundle(DNS), tmp_path)
    assert (tmp_path / tls.KEY_FILE).stat().st_mode & 0o077 == 0
    assert isinstance(tls.build_server_context(tmp_path), ssl.SSLContext)
    with pytest.raises(FileNotFoundError, match="tls.crt"):
        tls.build_server_context(tmp_path / "missing")


@pytest.fixture
async def cluster(tmp_path):
    c = LocalCluster(tmp_path / "store.db")
    yield c
    await c.close()


CFG = tls.SelfManagedCerts(namespace="kaito-system", service="kaito-webhook", webhook_configuration="kaito")


async def test_secret_created_once_and_reused(cluster):
    first = await tls.ensure_certificate(cluster, CFG)
    second = await tls.ensure_certificate(cluster, CFG)
    assert first == second
    secret = await cluster.get(protocol.SECRET, tls.DEFAULT_SECRET, "kaito-system")
    assert base64.b64decode(secret["data"]["ca-cert.pem"]) == first.ca_cert


async def test_racing_replicas_agree_on_one_bundle(cluster, tmp_path):
    other = LocalCluster(tmp_path / "store.db")  # a second replica: its own connection to the same store
    replicas = [(cluster, CFG), (other, dataclasses.replace(CFG, identity="b")),
                (cluster, dataclasses.replace(CFG, identity="c")), (other, dataclasses.replace(CFG, identity="d"))]
    try:
        bundles = await asyncio.gather(*(tls.ensure_certificate(c, cfg) for c, cfg in replicas))
    finally:
        await other.close()
    assert len({b.ca_cert for b in bundles}) == 1


async def test_expiring_secret_is_renewed(cluster):
    stale = certs.build_cert_bundle(certs.compute_dns_names(CFG.service, CFG.namespace),
                                    now=dt.datetime.now(dt.UTC) - certs.VALIDITY)
    await cluster.apply(tls.build_secret(CFG, stale, None), field_manager="someone-else")
    fresh = await tls.ensure_certificate(cluster, CFG)
    assert fresh != stale and not certs.needs_renewal(fresh, DNS)


async def test_ca_bundle_patched_keeping_the_rest_of_the_webhook(cluster):
    protocol.register_kind(tls.VALIDATING_WEBHOOK_CONFIGURATION)
    vwc = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "kaito"},
        "webhooks": [{"name": "validation.workspace.kaito.sh", "sideEffects": "None",
                      "admissionReviewVersions": ["v1"],
                      "clientConfig": {"service": {"name": "kaito-webhook", "namespace": "kaito-system",
                                                   "path": "/validate/workspace.kaito.sh"}},
                      "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["kaito.sh"]}]}],
    }
    await cluster.apply(vwc, field_manager="helm")
    bundle = await tls.ensure_certificate(cluster, CFG)
    assert await tls.ensure_ca_bundle(cluster, "kaito", bundle.ca_cert) is True
    assert await tls.ensure_ca_bundle(cluster, "kaito", bundle.ca_cert) is False  # already set: no write
    stored = await cluster.get(tls.VALIDATING_WEBHOOK_CONFIGURATION, "kaito")
    hook = stored["webhooks"][0]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == bundle.ca_cert
    assert hook["clientConfig"]["service"]["path"] == "/validate/workspace.kaito.sh"
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert await tls.ensure_ca_bundle(cluster, "missing", bundle.ca_cert) is False


async def test_crd_conversion_points_at_this_service_with_the_ca(cluster):
    from kaito.api.crd import build_crd

    protocol.register_kind(tls.CUSTOM_RESOURCE_DEFINITION)
    cfg = tls.SelfManagedCerts(namespace="kaito-system", service="my-kaito-webhook", webhook_configuration="kaito")
    bundle = await tls.ensure_certificate(cluster, cfg)
    assert await tls.ensure_crd_conversion(cluster, cfg, bundle.ca_cert) is False  # no CRD yet: nothing to do
    await cluster.apply(build_crd(), field_manager="helm")
    assert await tls.ensure_crd_conversion(cluster, cfg, bundle.ca_cert) is True
    assert await tls.ensure_crd_conversion(cluster, cfg, bundle.ca_cert) is False  # already right: no write
    crd = await cluster.get(tls.CUSTOM_RESOURCE_DEFINITION, "workspaces.kaito.sh")
    client = crd["spec"]["conversion"]["webhook"]["clientConfig"]
    assert client["service"] == {"name": "my-kaito-webhook", "namespace": "kaito-system", "path": "/convert",
                                 "port": 443}
    assert base64.b64decode(client["caBundle"]) == bundle.ca_cert
    assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1", "v1beta1"]  # the rest is the chart's
