"""Name, image and URL formats the admission rules check.

Kept apart from the rules so the same definitions serve adapters, data sources and destinations.
No DNS lookups: admission must be pure, so a URL is judged by what it says, not where it resolves.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import socket
from urllib.parse import urlsplit

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL_MAX = 63
# KAITO's adapter-name pattern (case-insensitive, as v0.3.2 has it) and DNS-subdomain length.
ADAPTER_NAME = re.compile(r"^(?i:[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")
DNS1123_SUBDOMAIN_MAX = 253
# v0.3.2's image check: a registry path, a repository and a tag.
IMAGE_REFERENCE = re.compile(r"^(.+/[^:/]+):([^:/]+)$")
# v0.12 parses images as Docker references (the distribution/reference grammar): registry and tag are
# optional, path components are lowercase.
_ALNUM = r"[a-z0-9]+"
_PATH_COMPONENT = rf"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
DOCKER_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$"
)
DOCKER_NAME_MAX = 255

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.google", "instance-data.ec2.internal"})
# Metadata services outside link-local: Alibaba's (in carrier-grade NAT space) and EC2's IPv6 one
# (a unique-local address, so the local cluster would otherwise admit it as private).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254"))
# RFC 6598 shared address space: inside a provider's network, never a public dataset host.
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
# Hosts a resolver reads as a number (inet_aton: 2130706433, 0x7f000001, 127.1, 0177.0.0.1) rather
# than a DNS name; a name with any other letter, like "example", can never be one.
NUMERIC_HOST = re.compile(r"^[0-9][0-9a-fx.]*$")
LOCAL_ONLY = " (allowed only when the Workspace runs on the local cluster)"


class UrlPolicy(enum.Enum):
    """Which hosts a pod may fetch `tuning.input.urls` from on the user's behalf.

    On a shared cluster a pod must not be pointed at the cluster's own network (SSRF guard, as
    KAITO v0.12). On the embedded local cluster the user's machine is the cluster: a dataset served
    on 127.0.0.1 or the LAN is theirs. Cloud metadata services and link-local addresses stay
    refused under both policies: no dataset lives there, credentials do.
    """

    PUBLIC_ONLY = "public-only"
    ALLOW_LOCAL = "allow-local"


def is_dns1123_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and bool(DNS1123_LABEL.match(value))


def is_adapter_name(value: str) -> bool:
    return 1 <= len(value) <= DNS1123_SUBDOMAIN_MAX and bool(ADAPTER_NAME.match(value))


def image_problem(image: str, what: str) -> str | None:
    """Why `image` is not a full `registry/repo:tag` reference, or None when it is."""
    match = IMAGE_REFERENCE.match(image)
    if match is None:
        return f"invalid image format {image!r}: need the full {what} image URL, like registry/repository:tag"
    repository = match.group(1).rsplit("/", 1)[-1]
    if repository != repository.lower():
        return f"repository name {repository!r} in image {image!r} must be lowercase"
    return None


def docker_reference_problem(image: str, what: str) -> str | None:
    """Why `image` is not a Docker image reference (KAITO v0.12's rule), or None when it is."""
    if DOCKER_REFERENCE.match(image) and len(image.split("@")[0].rsplit(":", 1)[0]) <= DOCKER_NAME_MAX:
        return None
    first, slash, rest = image.partition("/")
    path = rest if slash and ("." in first or ":" in first or first == "localhost") else image
    if path != path.lower() and DOCKER_REFERENCE.match(image.replace(path, path.lower())):
        return f"repository name in {what} image {image!r} must be lowercase"
    return f"invalid {what} image reference {image!r}: expected [registry/]repository[:tag][@digest]"


def compute_host_address(host: str, bracketed: bool) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` denotes without DNS, or None when it is a DNS name.

    Resolvers accept the BSD inet_aton forms (decimal, hex, octal, fewer than four parts), so a host
    made only of such characters is parsed the same way; `ipaddress` alone knows only dotted quads.
    Raises ValueError for a bracketed host that is not an IPv6 address: it cannot be a DNS name.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if bracketed or ":" in host:
            raise ValueError(f"{host!r} is not a valid IPv6 address") from None
        if not NUMERIC_HOST.match(host):
            return None
        try:
            # inet_aton is a pure parse (no lookup); the pattern above keeps out the spaces it stops at.
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None  # e.g. 1.2.3.4.5 or 08: not a number, so a resolver looks it up as a name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address


def url_problem(url: str, policy: UrlPolicy = UrlPolicy.PUBLIC_ONLY) -> str | None:
    """Why `url` may not be fetched by a pod on the user's behalf under `policy`, or None when it may."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        return f"invalid URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"URL {url!r} must use http or https"
    if not host:
        return f"URL {url!r} has no host"
    host = host.lower().rstrip(".")
    local_ok = policy is UrlPolicy.ALLOW_LOCAL
    if host in METADATA_HOSTS:
        return f"URL {url!r} points at a cloud metadata service"
    if host == "localhost" or host.endswith(".localhost"):
        return None if local_ok else f"URL {url!r} points at localhost{LOCAL_ONLY}"
    try:
        address = compute_host_address(host, bracketed=parts.netloc.rpartition("@")[2].startswith("["))
    except ValueError as exc:
        return f"invalid URL {url!r}: {exc}"
    if address is None:
        return None  # a DNS name: allowed, it is not resolved here
    # Say which address a numeric spelling such as 0x7f000001 stands for.
    shown = "" if str(address) == host else f" ({address})"
    if address in METADATA_ADDRESSES:
        return f"URL {url!r} points at a cloud metadata service{shown}"
    # Order matters: ::1 also counts as reserved, 169.254.0.0/16 also as private.
    if address.is_loopback or address.is_unspecified:
        return None if local_ok else f"URL {url!r} points at a loopback address{shown}{LOCAL_ONLY}"
    if address.is_link_local:
        return f"URL {url!r} points at a link-local address{shown} (cloud metadata services live there)"
    if address.is_multicast or address.is_reserved:
        return f"URL {url!r} points at a multicast or reserved address{shown}"
    if address.is_private:
        return None if local_ok else f"URL {url!r} points at a private address{shown}{LOCAL_ONLY}"
    if address in CARRIER_GRADE_NAT:
        return None if local_ok else f"URL {url!r} points at a shared address (carrier-grade NAT){shown}{LOCAL_ONLY}"
    return None
