"""ConversionReview v1 → `kaito.api.conversion`: the CRD's conversion webhook.

The API server stores v1beta1 and serves v1alpha1 too, for Workspaces, InferenceSets and RAGEngines;
whenever it needs an object in the other version it posts a ConversionReview here
(`spec.conversion.strategy: Webhook` in each CRD). Every object is converted through its kind's hub
(`kaito.api.kinds`), losslessly (fields a version lacks ride in an annotation).

A body that is not a ConversionReview raises `BadReview` (the server answers 400, never 500); a
well-formed review with an object that cannot be converted gets a `Failure` result naming the object
and the field, which the API server passes on to the client.
"""

from __future__ import annotations

from typing import Any

from kaito.api import conversion, kinds
from kaito.webhook.admission import BadReview, load_json_object

REVIEW_API_VERSION = "apiextensions.k8s.io/v1"
REVIEW_KIND = "ConversionReview"


def parse_conversion_review(body: bytes) -> tuple[str, str, list[Any]]:
    """(uid, desiredAPIVersion, objects) of a ConversionReview v1 body; `BadReview` names what is wrong."""
    review = load_json_object(body, REVIEW_KIND)
    if review.get("apiVersion") != REVIEW_API_VERSION or review.get("kind") != REVIEW_KIND:
        raise BadReview(f"expected apiVersion {REVIEW_API_VERSION} kind {REVIEW_KIND}, "
                        f"got {review.get('apiVersion')!r} {review.get('kind')!r}")
    req = review.get("request")
    if not isinstance(req, dict):
        raise BadReview(f"{REVIEW_KIND} has no request")
    uid = req.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid is required")
    desired = req.get("desiredAPIVersion")
    if not isinstance(desired, str) or not desired:
        raise BadReview("request.desiredAPIVersion is required")
    objects = req.get("objects")
    if not isinstance(objects, list):
        raise BadReview("request.objects must be a list")
    return uid, desired, objects


def build_conversion_response(uid: str, desired: str, objects: list[Any]) -> dict[str, Any]:
    """The ConversionReview answer (pure): every object converted, or a Failure naming the first bad one."""
    converted = []
    for i, obj in enumerate(objects):
        try:
            converted.append(kinds.convert_object(obj, desired))
        except conversion.ParseError as exc:
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            name = (meta.get("name") if isinstance(meta, dict) else None) or f"#{i}"
            result = {"status": "Failure", "message": f"cannot convert object {name} to {desired}: {exc}"}
            return _review({"uid": uid, "result": result})
    return _review({"uid": uid, "convertedObjects": converted, "result": {"status": "Success"}})


def _review(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": REVIEW_API_VERSION, "kind": REVIEW_KIND, "response": response}


def review(body: bytes) -> dict[str, Any]:
    """Answer a ConversionReview body; raises `BadReview` for a body that is not one."""
    return build_conversion_response(*parse_conversion_review(body))
