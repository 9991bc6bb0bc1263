"""Error translation of the lightkube backend: every failure shape leaves as one typed error."""

from __future__ import annotations

import httpx2
import pytest
from lightkube import ApiError

from kaito.cluster import errors
from kaito.cluster.kube_wire import resource_class, translate
from kaito.cluster.protocol import DEPLOYMENT, NODECLAIM, SERVICE, WORKSPACE

_REQUEST = httpx2.Request("GET", "http://127.0.0.1/apis/apps/v1/namespaces/default/deployments/a")


def _api_error(code: int, headers: dict | None = None) -> ApiError:
    body = {"kind": "Status", "apiVersion": "v1", "code": code, "message": f"code {code}", "status": "Failure"}
    response = httpx2.Response(code, json=body, request=_REQUEST, headers=headers)
    return ApiError(request=_REQUEST, response=response)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(404, errors.NotFound), (409, errors.Conflict), (410, errors.Gone), (422, errors.Invalid),
     (400, errors.Invalid), (429, errors.Unavailable), (500, errors.Unavailable), (503, errors.Unavailable),
     (403, errors.ClusterError)],
)
def test_api_errors_map_by_code(code, expected) -> None:
    err = translate(_api_error(code))
    assert type(err) is expected
    assert err.status == code
    assert errors.is_retryable(err) == (expected is errors.Unavailable)


def test_retry_after_is_read_from_the_response() -> None:
    err = translate(_api_error(429, headers={"Retry-After": "2"}))
    assert isinstance(err, errors.Unavailable) and err.retry_after == 2.0


def test_a_status_from_a_watch_stream_has_no_response_but_maps() -> None:
    from lightkube.core.internal_models import meta_v1

    err = translate(ApiError(status=meta_v1.Status(code=410, message="too old resource version")))
    assert isinstance(err, errors.Gone)


def test_non_json_error_bodies_and_transport_errors_are_typed() -> None:
    response = httpx2.Response(502, text="<html>bad gateway</html>", request=_REQUEST)
    status_error = httpx2.HTTPStatusError("bad gateway", request=_REQUEST, response=response)
    assert isinstance(translate(status_error), errors.Unavailable)
    assert isinstance(translate(httpx2.ConnectError("refused", request=_REQUEST)), errors.Unavailable)
    assert isinstance(translate(httpx2.ReadTimeout("slow", request=_REQUEST)), errors.Unavailable)
    already = errors.Conflict("x")
    assert translate(already) is already


def test_resource_classes_follow_group_scope_and_plural() -> None:
    from lightkube.core import resource as lk_resource

    deployment = resource_class(DEPLOYMENT)
    assert deployment._api_info.resource.group == "apps" and deployment._api_info.plural == "deployments"
    assert issubclass(deployment, lk_resource.NamespacedResource)
    assert resource_class(SERVICE)._api_info.resource.group == ""
    assert issubclass(resource_class(NODECLAIM), lk_resource.GlobalResource)
    assert resource_class(WORKSPACE).Status._api_info.action == "status"
    assert resource_class(DEPLOYMENT) is deployment  # built once
