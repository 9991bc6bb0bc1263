"""How `KubeCluster` speaks lightkube: resource classes for our kinds and error translation.

Every kind, built-in or custom, is driven through lightkube's *generic* resources (plain-dict
subclasses), so objects round-trip exactly as the server sent them; lightkube's typed models
would drop fields they do not know. The classes are built here without registering them in
lightkube's global registry, so they never collide with typed models other code may load.

Failures reach us in three shapes — `ApiError` (a `Status` body), an `HTTPStatusError` without a
JSON body (proxies, odd servers), and transport errors — and leave as exactly one typed error.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx2
from lightkube import ApiError
from lightkube.core import resource as lk_resource
from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericGlobalStatus,
    GenericNamespacedResource,
    GenericNamespacedStatus,
    create_api_info,
)

from kaito.cluster import errors
from kaito.cluster.protocol import ResourceKind


@functools.cache
def resource_class(kind: ResourceKind) -> type:
    """A lightkube generic resource class (with `.Status` and `.Scale` subresources) for `kind`."""
    info = create_api_info(kind.group, kind.version, kind.kind, kind.plural)
    status_base = GenericNamespacedStatus if kind.namespaced else GenericGlobalStatus
    status_info = lk_resource.ApiInfo(
        resource=info.resource, parent=info.resource, plural=info.plural, verbs=["get", "patch", "put"], action="status"
    )
    status_cls = type(f"{kind.kind}Status", (status_base,), {"_api_info": status_info})
    # The scale subresource answers an autoscaling/v1 Scale; a generic class takes it as a plain dict.
    scale_info = lk_resource.ApiInfo(
        resource=info.resource, parent=info.resource, plural=info.plural, verbs=["get", "patch"], action="scale"
    )
    scale_cls = type(f"{kind.kind}Scale", (status_base,), {"_api_info": scale_info})
    main_base = GenericNamespacedResource if kind.namespaced else GenericGlobalResource
    return type(kind.kind, (main_base,), {"_api_info": info, "Status": status_cls, "Scale": scale_cls})


def to_plain(obj: Any) -> dict[str, Any]:
    """A lightkube generic object as the plain dict the protocol promises."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj)


def _retry_after(response: httpx2.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _by_code(code: int, message: str, retry_after: float | None) -> errors.ClusterError:
    if code == 404:
        return errors.NotFound(message)
    if code == 409:
        return errors.Conflict(message)
    if code == 410:
        return errors.Gone(message)
    if code in (400, 415, 422):
        return errors.Invalid(message, status=code)
    if code == 429 or code >= 500:
        return errors.Unavailable(message, status=code, retry_after=retry_after)
    return errors.ClusterError(message, status=code)


def translate(exc: BaseException) -> errors.ClusterError:
    """The typed error for a lightkube/httpx failure (already-typed errors pass through)."""
    if isinstance(exc, errors.ClusterError):
        return exc
    if isinstance(exc, ApiError):
        status = exc.status
        code = int(getattr(status, "code", None) or (exc.response.status_code if exc.response is not None else 500))
        message = getattr(status, "message", None) or str(exc)
        return _by_code(code, message, _retry_after(exc.response))
    if isinstance(exc, httpx2.HTTPStatusError):
        code = exc.response.status_code
        return _by_code(code, f"HTTP {code} from {exc.request.url}", _retry_after(exc.response))
    if isinstance(exc, httpx2.TransportError | httpx2.StreamError | OSError):
        return errors.Unavailable(f"cannot reach the API server: {exc.__class__.__name__}: {exc}")
    return errors.ClusterError(f"{exc.__class__.__name__}: {exc}")


TRANSLATABLE = (ApiError, httpx2.HTTPError, httpx2.StreamError, OSError)
