"""TLS material for the admission webhook: a private CA and a serving certificate.

The API server calls the webhook over HTTPS and checks the serving certificate against the
`caBundle` of the ValidatingWebhookConfiguration. Clusters without cert-manager still need this to
work out of the box, so (as KAITO's knative webhook does) the operator can mint its own CA and a
certificate for `<service>.<namespace>.svc`, keep them in a Secret, and patch the caBundle. The
pure builders here only make the PEM bytes; `kaito.webhook.tls` stores and loads them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# One year, renewed by the operator before it runs out (see `needs_renewal`).
VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class CertBundle:
    """PEM-encoded CA certificate, serving certificate and serving key (the Secret's three keys)."""

    ca_cert: bytes
    server_cert: bytes
    server_key: bytes

    def to_secret_data(self) -> dict[str, bytes]:
        return {"ca-cert.pem": self.ca_cert, "server-cert.pem": self.server_cert, "server-key.pem": self.server_key}

    @classmethod
    def from_secret_data(cls, data: dict[str, bytes]) -> CertBundle:
        return cls(ca_cert=data["ca-cert.pem"], server_cert=data["server-cert.pem"], server_key=data["server-key.pem"])


def compute_dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use to reach the Service (it uses `<svc>.<ns>.svc`)."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def build_cert_bundle(dns_names: list[str], *, now: dt.datetime | None = None,
                      ip_addresses: list[str] | None = None) -> CertBundle:
    """A fresh CA and a serving certificate for `dns_names` (and optional IPs, used by tests on 127.0.0.1)."""
    import ipaddress

    now = now or dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kaito-webhook-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock skew between nodes
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses or []]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return CertBundle(
        ca_cert=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert=cert.public_bytes(serialization.Encoding.PEM),
        server_key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()),
    )


def needs_renewal(bundle: CertBundle, dns_names: list[str], *, now: dt.datetime | None = None) -> bool:
    """True when the stored certificate is unreadable, expires soon, or does not cover `dns_names`."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert = x509.load_pem_x509_certificate(bundle.server_cert)
        x509.load_pem_x509_certificate(bundle.ca_cert)
        serialization.load_pem_private_key(bundle.server_key, password=None)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound, TypeError):
        return True
    if cert.not_valid_after_utc - RENEW_BEFORE <= now:
        return True
    return not set(dns_names) <= set(sans.get_values_for_type(x509.DNSName))
