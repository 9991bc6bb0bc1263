"""AdmissionReview v1 → the same verdict `kaito validate` gives, with the same words.

The API server sends every CREATE and UPDATE of a `kaito.sh` Workspace here. The rules are
`kaito.api.validation` (with `kaito.catalog`'s facts); this module only translates: it parses the
review, fetches the tuning ConfigMap the rules need (through the `Cluster` protocol), and answers
with `allowed`, a `status.message` made of the FieldErrors exactly as the CLI prints them
(`field: message`, joined by "; "), and `warnings` for warning-level problems.

Bad input is the caller's fault, never ours: a body that is not an AdmissionReview raises
`BadReview` (the server answers 400); a Workspace that does not parse is *denied* with the
parser's field errors, as `kaito validate` reports them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from kaito.api.documents import validation_errors
from kaito.api.errors import FieldError, errors_only, warnings_only
from kaito.api.facts import ModelFacts
from kaito.api.v1alpha1 import API_VERSION, GROUP, KIND, Workspace
from kaito.api.validation import default_configmap_name, validate_tuning_config, validate_workspace

REVIEW_API_VERSION = "admission.k8s.io/v1"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")  # all an API server sends
# Returns the ConfigMap's `data` (None when it does not exist); raises for any other failure.
ConfigMapReader = Callable[[str, str], Awaitable[Mapping[str, str] | None]]


class BadReview(ValueError):
    """The request body is not an AdmissionReview v1 we can answer."""


@dataclass(frozen=True)
class AdmissionRequest:
    uid: str
    operation: str
    namespace: str
    object: Any
    old_object: Any
    group: str
    kind: str


def parse_review(body: bytes) -> AdmissionRequest:
    """The request of an AdmissionReview v1 body (pure); `BadReview` names what is wrong."""
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadReview(f"body is not JSON: {exc}") from None
    except RecursionError:  # the HTTP layer refuses deep nesting first; this is the last guard
        raise BadReview("body is JSON nested too deep") from None
    if not isinstance(review, dict):
        raise BadReview("body must be a JSON object (an AdmissionReview)")
    if review.get("apiVersion") != REVIEW_API_VERSION or review.get("kind") != "AdmissionReview":
        raise BadReview(f"expected apiVersion {REVIEW_API_VERSION} kind AdmissionReview, "
                        f"got {review.get('apiVersion')!r} {review.get('kind')!r}")
    req = review.get("request")
    if not isinstance(req, dict):
        raise BadReview("AdmissionReview has no request")
    uid = req.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid is required")
    operation = req.get("operation")
    if not isinstance(operation, str):
        raise BadReview("request.operation is required")
    if operation not in OPERATIONS:
        raise BadReview(f"request.operation {operation[:40]!r} is not one of {', '.join(OPERATIONS)}")
    kind = req.get("kind") if isinstance(req.get("kind"), dict) else {}
    return AdmissionRequest(
        uid=uid,
        operation=operation,
        namespace=str(req.get("namespace") or ""),
        object=req.get("object"),
        old_object=req.get("oldObject"),
        group=str(kind.get("group", GROUP)),
        kind=str(kind.get("kind", KIND)),
    )


def build_review_response(uid: str, problems: list[FieldError]) -> dict[str, Any]:
    """The AdmissionReview answer for `problems` (pure): denied iff any is an error."""
    errors, warnings = errors_only(problems), warnings_only(problems)
    response: dict[str, Any] = {"uid": uid, "allowed": not errors}
    if errors:
        response["status"] = {
            "code": 403,
            "reason": "Forbidden",
            "message": "; ".join(str(e) for e in errors),
        }
    if warnings:
        # The API server shows each warning to kubectl users; it caps them at 120 characters each.
        response["warnings"] = [str(w)[:120] for w in warnings]
    return {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "response": response}


def parse_workspace(obj: Any, namespace: str) -> tuple[Workspace | None, list[FieldError]]:
    """The Workspace of an admission object, or the field errors `kaito validate` would print."""
    if not isinstance(obj, dict):
        return None, [FieldError("", "the admitted object is not a JSON object")]
    if obj.get("apiVersion") != API_VERSION:
        return None, [FieldError("apiVersion", f"unsupported version {obj.get('apiVersion')!r}: "
                                               f"this build reads {API_VERSION}")]
    data = dict(obj)
    meta = dict(data.get("metadata") or {})
    if namespace and not meta.get("namespace"):
        meta["namespace"] = namespace  # the API server may leave it to the request on CREATE
    data["metadata"] = meta
    try:
        return Workspace.from_dict(data), []
    except pydantic.ValidationError as exc:
        return None, validation_errors(exc)


class WorkspaceAdmission:
    """Validates admitted Workspaces: `kaito.api` rules, catalog facts, tuning ConfigMaps."""

    def __init__(self, facts: ModelFacts, read_configmap: ConfigMapReader, release_namespace: str | None,
                 on_result: Callable[[str, bool], None] | None = None) -> None:
        self._facts = facts
        self._read_configmap = read_configmap
        self._release_namespace = release_namespace
        self._on_result = on_result

    async def review(self, body: bytes) -> dict[str, Any]:
        """The AdmissionReview answer; raises `BadReview` for a body that is not one."""
        req = parse_review(body)
        problems = await self.problems(req)
        answer = build_review_response(req.uid, problems)
        if self._on_result is not None:
            self._on_result(req.operation, answer["response"]["allowed"])
        return answer

    async def problems(self, req: AdmissionRequest) -> list[FieldError]:
        if req.operation not in ("CREATE", "UPDATE") or req.kind != KIND or req.group != GROUP:
            return []  # registered for Workspace CREATE/UPDATE only; anything else is not ours to judge
        ws, errs = parse_workspace(req.object, req.namespace)
        if ws is None:
            return errs
        if ws.metadata.deletion_timestamp is not None:
            return []  # never block finalizer removal on a Workspace that is going away
        old: Workspace | None = None
        if req.operation == "UPDATE":
            old, old_errs = parse_workspace(req.old_object, req.namespace)
            if old is None:
                # An object stored before these rules existed must still be updatable to a valid one.
                problems = validate_workspace(ws, None, facts=self._facts)
                return problems + [FieldError("", "the stored Workspace does not parse; checked as new",
                                              "warning")]
        problems = validate_workspace(ws, old, facts=self._facts)
        if ws.tuning is not None and (old is None or old.tuning is None or old.tuning.config != ws.tuning.config):
            problems += await self._tuning_config_problems(ws)
        return problems

    async def _tuning_config_problems(self, ws: Workspace) -> list[FieldError]:
        tuning = ws.tuning
        assert tuning is not None
        if tuning.config:
            name, namespace = tuning.config, ws.namespace
        else:
            name = default_configmap_name(tuning.method)
            if name is None:
                return []  # an unknown method is already an error of its own
            if not self._release_namespace:
                return [FieldError("tuning.config", "cannot find the default tuning ConfigMap: the "
                                                    "operator's release namespace is unknown")]
            namespace = self._release_namespace
        try:
            data = await self._read_configmap(namespace, name)
        except Exception as exc:  # a cluster failure: deny with the reason (failurePolicy Fail would too)
            return [FieldError("tuning.config", f"could not read ConfigMap {name!r} in namespace "
                                                f"{namespace!r}: {exc}")]
        return validate_tuning_config(name, data, tuning.method, namespace)
