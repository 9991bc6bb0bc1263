"""The one admission entry point: any admitted kind, any served version → hub → default → admit.

`kaito validate`, `kaito render`, `kaito apply`, the admission webhook and the controller all call
`admit` (or `admit_workspace` when they already hold a hub), so one Workspace gets one verdict
everywhere. InferenceSets and RAGEngines come in the same way (`admit` dispatches on `kind`
through `kaito.api.kinds`): an InferenceSet's child Workspace is judged by the Workspace rules, so
what a set needs read is what its child needs; a RAGEngine needs its guardrails ConfigMap. Facts come from one place too (`kaito.catalog.facts.build_catalog_facts`), and so do the
ConfigMap checks (`kaito.api.validation.configmaps`).

Admission does no I/O: what it must know about the cluster is read by the caller. Callers that can
read (the webhook, the controller) parse first with `parse_request`, read what `Request.needs` names
(ConfigMaps, the BYO nodes a selector matches), and pass it as `ClusterReads`; the CLI passes the
ConfigMaps it found in the given files. Verdicts are values: problems with field paths, never an
exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaito.api import hub, inferenceset, kinds, labels, ragengine
from kaito.api.conversion import ParseError, parse_workspace
from kaito.api.errors import FieldError, errors_only, warnings_only
from kaito.api.facts import ModelFacts
from kaito.api.validation import configmaps
from kaito.api.validation.context import AdmissionOptions, ClusterReads, RuleSet
from kaito.api.validation.inferenceset import validate_inferenceset
from kaito.api.validation.ragengine import needed_configmaps, validate_ragengine
from kaito.api.validation.workspace import validate_hub

__all__ = [
    "ADMITTED_KINDS",
    "Admission",
    "AdmissionOptions",
    "ClusterReads",
    "Needs",
    "Request",
    "RuleSet",
    "admit",
    "admit_workspace",
    "parse_request",
]


ADMITTED_KINDS = kinds.ADMITTED_KINDS


@dataclass(frozen=True)
class Needs:
    """What the caller should read before admitting: ConfigMaps, and BYO nodes by these labels."""

    configmaps: tuple[configmaps.ConfigMapRef, ...] = ()
    node_labels: Mapping[str, str] | None = None  # list nodes with these labels; None: no nodes needed


@dataclass(frozen=True)
class Request:
    """A parsed admission request: the hub objects and the version the user wrote.

    `workspace`/`old` are set for a Workspace; `obj`/`old_obj` hold the hub object of any kind
    (the Workspace too). A parse error in `problems` means `obj` is None.
    """

    workspace: hub.Workspace | None
    old: hub.Workspace | None = None
    api_version: str | None = None
    problems: tuple[FieldError, ...] = ()
    kind: str = hub.KIND
    obj: Any = None
    old_obj: Any = None

    def needs(self, options: AdmissionOptions | None = None) -> Needs:
        options = options or AdmissionOptions()
        if self.kind == ragengine.KIND and self.obj is not None and not _skip(self.obj):
            return Needs(configmaps=tuple(needed_configmaps(self.obj, options)))
        if self.kind == inferenceset.KIND and self.obj is not None and not _skip(self.obj):
            # The child is judged as a new v1beta1 Workspace on CREATE and UPDATE alike.
            child = inferenceset.build_child_workspace(self.obj, auto_provisioning=options.auto_provisioning)
            return Needs(configmaps=tuple(configmaps.needed(child, None, options)),
                         node_labels=_byo_node_labels(child, None, RuleSet.V1BETA1, options))
        ws = self.workspace
        if ws is None or _skip(ws):
            return Needs()
        return Needs(configmaps=tuple(configmaps.needed(ws, self.old, options)),
                     node_labels=_byo_node_labels(ws, self.old, self.api_version, options))


@dataclass(frozen=True)
class Admission:
    """The verdict: allowed iff no problem is an error. `workspace` is the defaulted hub Workspace;
    `obj` the defaulted hub object of any kind (None when it did not parse)."""

    workspace: hub.Workspace | None
    api_version: str | None
    problems: list[FieldError] = field(default_factory=list)
    kind: str = hub.KIND
    obj: Any = None

    @property
    def allowed(self) -> bool:
        return not errors_only(self.problems)

    @property
    def errors(self) -> list[FieldError]:
        return errors_only(self.problems)

    @property
    def warnings(self) -> list[FieldError]:
        return warnings_only(self.problems)


def _with_namespace(obj: Any, namespace: str | None) -> Any:
    """The API server may leave the namespace to the request on CREATE; the rules need it."""
    if not namespace or not isinstance(obj, Mapping) or not isinstance(obj.get("metadata"), Mapping | None):
        return obj
    meta = dict(obj.get("metadata") or {})
    if meta.get("namespace"):
        return obj
    return {**obj, "metadata": {**meta, "namespace": namespace}}


def _parse_other(obj: Any, old: Any, namespace: str | None, kind: str) -> Request:
    """An InferenceSet or a RAGEngine of any served version (and its stored object) as hubs."""
    try:
        new, api_version = kinds.parse_object(_with_namespace(obj, namespace))
    except ParseError as exc:
        written = obj.get("apiVersion")
        return Request(None, api_version=written if written in tuple(RuleSet) else None, problems=tuple(exc.errors),
                       kind=kind)
    if old is None:
        return Request(None, api_version=api_version, kind=kind, obj=new)
    try:
        old_obj, _ = kinds.parse_object(_with_namespace(old, namespace))
    except ParseError:
        return Request(None, api_version=api_version, kind=kind, obj=new, problems=(
            FieldError("", f"the stored {kind} does not parse; checked as new", "warning"),))
    return Request(None, api_version=api_version, kind=kind, obj=new, old_obj=old_obj)


def parse_request(obj: Any, old: Any = None, *, namespace: str | None = None) -> Request:
    """Parse the object (and, on UPDATE, the stored object) of any admitted kind and served version."""
    kind = kinds.kind_of(obj)
    if kind in kinds.KINDS:
        return _parse_other(obj, old, namespace, kind)
    try:
        ws, api_version = parse_workspace(_with_namespace(obj, namespace))
    except ParseError as exc:
        written = obj.get("apiVersion") if isinstance(obj, Mapping) else None
        return Request(None, api_version=written if written in tuple(RuleSet) else None, problems=tuple(exc.errors))
    ws = hub.default_workspace(ws)
    if old is None:
        return Request(ws, api_version=api_version, obj=ws)
    try:
        old_ws, _ = parse_workspace(_with_namespace(old, namespace))
    except ParseError:
        # An object stored before these rules existed must still be updatable to a valid one.
        return Request(ws, api_version=api_version, problems=(
            FieldError("", "the stored Workspace does not parse; checked as new", "warning"),), obj=ws)
    old_ws = hub.default_workspace(old_ws)
    return Request(ws, old_ws, api_version, obj=ws, old_obj=old_ws)


def _skip(obj: Any) -> bool:
    """Never block an object that is going away (its finalizer must be removable)."""
    return obj.metadata.deletion_timestamp is not None


def _rules(api_version: str | None) -> RuleSet:
    return RuleSet(api_version) if api_version in tuple(RuleSet) else RuleSet.V1BETA1


def _byo_node_labels(ws: hub.Workspace, old: hub.Workspace | None, api_version: str | None,
                     options: AdmissionOptions) -> dict[str, str] | None:
    if (old is not None or options.auto_provisioning or _rules(api_version) is not RuleSet.V1BETA1
            or ws.resource is None or ws.resource.partition is not None
            or ws.inference is None or ws.inference.preset is None):
        return None
    selector = ws.resource.label_selector.match_labels or {}
    return {k: v for k, v in selector.items() if k not in labels.RESERVED_SELECTOR_KEYS}


def admit(obj: Any, old: Any = None, *, facts: ModelFacts, options: AdmissionOptions | None = None,
          reads: ClusterReads | None = None, namespace: str | None = None) -> Admission:
    """Admit a Workspace, InferenceSet or RAGEngine of any served version (a dict, or a `Request`).

    `old` is the stored object on UPDATE (ignored when `obj` is a Request). `reads` carries what the
    caller read; None means "nothing": ConfigMaps named by the Workspace are then only warned about.
    """
    request = obj if isinstance(obj, Request) else parse_request(obj, old, namespace=namespace)
    if request.kind != hub.KIND:
        return _admit_other(request, facts=facts, options=options, reads=reads)
    if request.workspace is None:
        return Admission(None, request.api_version, list(request.problems))
    if _skip(request.workspace):
        return Admission(request.workspace, request.api_version, [], obj=request.workspace)
    problems = list(request.problems) + admit_workspace(
        request.workspace, request.old, api_version=request.api_version, facts=facts, options=options,
        reads=reads if reads is not None else ClusterReads()).problems
    return Admission(request.workspace, request.api_version, problems, obj=request.workspace)


def _admit_other(request: Request, *, facts: ModelFacts, options: AdmissionOptions | None,
                 reads: ClusterReads | None) -> Admission:
    if request.obj is None or _skip(request.obj):
        return Admission(None, request.api_version, list(request.problems) if request.obj is None else [],
                         kind=request.kind, obj=request.obj)
    options = options or AdmissionOptions()
    reads = reads if reads is not None else ClusterReads()
    if request.kind == inferenceset.KIND:
        found = validate_inferenceset(request.obj, request.old_obj, facts=facts, options=options, reads=reads)
    else:
        found = validate_ragengine(request.obj, request.old_obj, facts=facts, rules=_rules(request.api_version),
                                   options=options, reads=reads)
    return Admission(None, request.api_version, list(request.problems) + found, kind=request.kind,
                     obj=request.obj)


def admit_workspace(ws: hub.Workspace, old: hub.Workspace | None = None, *, api_version: str | None,
                    facts: ModelFacts, options: AdmissionOptions | None = None,
                    reads: ClusterReads | None = None) -> Admission:
    """Admit a hub Workspace under the rules of the version it was written in.

    `api_version` None means the storage version's rules (v1beta1). Callers that hold a hub (the
    controller re-checking a stored object) use this; everyone else calls `admit`.
    """
    ws = hub.default_workspace(ws)
    problems = validate_hub(ws, old, facts=facts, rules=_rules(api_version), options=options,
                            reads=reads if reads is not None else ClusterReads())
    return Admission(ws, api_version, problems)
