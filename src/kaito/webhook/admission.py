"""AdmissionReview v1 → the verdict of `kaito.api.admission`, with the same words `kaito validate` prints.

The API server sends every CREATE and UPDATE of a `kaito.sh` Workspace, InferenceSet and RAGEngine
here, in either served version. The rules are `kaito.api.admission.admit` (with `kaito.catalog`'s facts); this module only
translates: it parses the review, reads what admission says it needs (ConfigMaps, and on BYO nodes
the nodes a selector matches, through the `Cluster` protocol), and answers with `allowed`, a
`status.message` made of the FieldErrors exactly as the CLI prints them (`field: message`, joined by
"; "), and `warnings` for warning-level problems.

Bad input is the caller's fault, never ours: a body that is not an AdmissionReview raises
`BadReview` (the server answers 400); a Workspace that does not parse is *denied* with the
parser's field errors, as `kaito validate` reports them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kaito.api import admission as api_admission
from kaito.api import conversion
from kaito.api.errors import FieldError, errors_only, warnings_only
from kaito.api.facts import ModelFacts

REVIEW_API_VERSION = "admission.k8s.io/v1"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")  # all an API server sends
GROUP, KIND = conversion.GROUP, conversion.KIND
# Returns the ConfigMap's `data` (None when it does not exist); raises for any other failure.
ConfigMapReader = Callable[[str, str], Awaitable[Mapping[str, str] | None]]
# Returns the labels of every node carrying all the given labels; raises when the cluster fails.
NodeLister = Callable[[Mapping[str, str]], Awaitable[list[Mapping[str, str]]]]


class BadReview(ValueError):
    """The request body is not a review we can answer."""


@dataclass(frozen=True)
class AdmissionRequest:
    uid: str
    operation: str
    namespace: str
    object: Any
    old_object: Any
    group: str
    kind: str


def load_json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadReview(f"body is not JSON: {exc}") from None
    except RecursionError:  # the HTTP layer refuses deep nesting first; this is the last guard
        raise BadReview("body is JSON nested too deep") from None
    if not isinstance(review, dict):
        raise BadReview(f"body must be a JSON object (a {what})")
    return review


def parse_review(body: bytes) -> AdmissionRequest:
    """The request of an AdmissionReview v1 body (pure); `BadReview` names what is wrong."""
    review = load_json_object(body, "AdmissionReview")
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


class WorkspaceAdmission:
    """Admits Workspaces, InferenceSets and RAGEngines of either served version: `kaito.api.admission`,
    catalog facts, cluster reads."""

    def __init__(self, facts: ModelFacts, read_configmap: ConfigMapReader, release_namespace: str | None,
                 on_result: Callable[[str, bool], None] | None = None, *,
                 options: api_admission.AdmissionOptions | None = None, list_nodes: NodeLister | None = None) -> None:
        self._facts = facts
        self._read_configmap = read_configmap
        base = options or api_admission.AdmissionOptions()
        self._options = base if base.release_namespace else _with_release_namespace(base, release_namespace)
        self._on_result = on_result
        self._list_nodes = list_nodes

    async def review(self, body: bytes) -> dict[str, Any]:
        """The AdmissionReview answer; raises `BadReview` for a body that is not one."""
        req = parse_review(body)
        problems = await self.problems(req)
        answer = build_review_response(req.uid, problems)
        if self._on_result is not None:
            self._on_result(req.operation, answer["response"]["allowed"])
        return answer

    async def problems(self, req: AdmissionRequest) -> list[FieldError]:
        if (req.operation not in ("CREATE", "UPDATE") or req.kind not in api_admission.ADMITTED_KINDS
                or req.group != GROUP):
            return []  # registered for CREATE/UPDATE of our kinds only; anything else is not ours to judge
        old = req.old_object if req.operation == "UPDATE" else None
        request = api_admission.parse_request(req.object, old, namespace=req.namespace)
        needs = request.needs(self._options)
        reads, extra = await self._read(needs)
        verdict = api_admission.admit(request, facts=self._facts, options=self._options, reads=reads)
        return extra + verdict.problems

    async def _read(self, needs: api_admission.Needs) -> tuple[api_admission.ClusterReads, list[FieldError]]:
        found: dict[tuple[str, str], Mapping[str, str] | None] = {}
        unreadable: dict[tuple[str, str], str] = {}
        for ref in needs.configmaps:
            try:
                found[ref.key] = await self._read_configmap(ref.namespace, ref.name)
            except Exception as exc:  # a cluster failure: deny with the reason (failurePolicy Fail would too)
                unreadable[ref.key] = str(exc) or type(exc).__name__
        nodes, extra = None, []
        if needs.node_labels is not None and self._list_nodes is not None:
            try:
                nodes = list(await self._list_nodes(needs.node_labels))
            except Exception as exc:
                extra.append(FieldError("resource.labelSelector", f"could not list the selected nodes: {exc}"))
        return api_admission.ClusterReads(configmaps=found, complete=True, unreadable=unreadable, nodes=nodes), extra


def _with_release_namespace(options: api_admission.AdmissionOptions,
                            namespace: str | None) -> api_admission.AdmissionOptions:
    return replace(options, release_namespace=namespace)
