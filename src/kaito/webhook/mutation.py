"""The mutating webhook: record the served version a Workspace's spec was written in.

The API server converts every Workspace to the storage version (v1beta1) before it stores it, so by
the time the controller reads one, the version its author wrote — whose admission rules the
validating webhook applied — is gone. This webhook (`POST /mutate/workspace.kaito.sh`, registered by
the chart for CREATE and UPDATE of both versions) answers with a JSONPatch setting annotation
`workspace.kaito.sh/api-version` to `kaito.api.conversion.compute_written_version`: the request's
version on a create or when the spec changes, else the record the stored object already has. The
controller re-checks a Workspace under that version's rules (v1beta1's when the annotation is
missing: a cluster installed without this webhook). The local store stamps the same annotation
with the same function.

It never refuses: judging is the validating webhook's job. A body that is not an AdmissionReview
raises `BadReview` (the server answers 400).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from kaito.api import conversion, labels
from kaito.webhook.admission import GROUP, KIND, REVIEW_API_VERSION, AdmissionRequest, parse_review


def _pointer(key: str) -> str:
    """A JSON Pointer segment (RFC 6901): `~` and `/` escaped."""
    return key.replace("~", "~0").replace("/", "~1")


def build_patch(req: AdmissionRequest) -> list[dict[str, Any]]:
    """The JSONPatch operations for one request (pure); [] when nothing is to change."""
    obj = req.object
    if req.operation not in ("CREATE", "UPDATE") or req.kind != KIND or req.group != GROUP:
        return []
    if not isinstance(obj, Mapping) or not isinstance(obj.get("metadata"), Mapping):
        return []  # not a Workspace at all: the validating webhook says why
    old = req.old_object if req.operation == "UPDATE" and isinstance(req.old_object, Mapping) else None
    version = conversion.compute_written_version(obj, old)
    annotations = obj["metadata"].get("annotations")
    if version is None or (isinstance(annotations, Mapping) and annotations.get(labels.ANNOTATION_API_VERSION) == version):
        return []
    if not isinstance(annotations, Mapping):
        return [{"op": "add", "path": "/metadata/annotations", "value": {labels.ANNOTATION_API_VERSION: version}}]
    return [{"op": "add", "path": f"/metadata/annotations/{_pointer(labels.ANNOTATION_API_VERSION)}",
             "value": version}]


def build_mutation_response(uid: str, patch: list[dict[str, Any]]) -> dict[str, Any]:
    """The AdmissionReview answer: always allowed, with the patch when there is one."""
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "response": response}


def review(body: bytes) -> dict[str, Any]:
    """Answer a mutating AdmissionReview body; raises `BadReview` for a body that is not one."""
    req = parse_review(body)
    return build_mutation_response(req.uid, build_patch(req))
