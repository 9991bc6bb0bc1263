"""Plan: from an observed InferenceSet to every write of one reconcile (pure; kaito-v0.12.md §3.3).

KAITO's order, as decisions rather than calls: finalizer (deleting: every child deleted, then the
finalizer released once none is left), revision (ControllerRevision and the set's hash and revision
annotations, ten kept), scale, relabel, status, gateway objects.

* **Scale up**: the desired count minus every child (those being deleted included, as KAITO
  counts them), created in one pass, each as the lowest replica ordinal not in use, named from the
  set's uid and that ordinal (`manifests.inferenceset.compute_child_name`). Nothing random: a
  restart after any write computes the same names, so it finds the children it made.
* **Scale down** (`select_victims`): children already being deleted count as gone; then not-ready
  children go first, ready ones only while more than the desired count stay ready; within each
  group the highest ordinal (the newest replica) first.
* **Template changes are not rolled out** to existing children, as in KAITO: new children get the
  new template. Their labels are: the template's labels and the set's role labels are applied onto
  existing children, under a field manager of their own, so removing a label from the template
  removes it where only that manager put it.
* **Re-check**: the stored set is judged by admission again (the local store has no webhook): a
  template admission refuses creates nothing and says why in `InferenceSetReady` (`inferencesetFailed`).
* **Gateway** (`Settings.inferenceset_gateway`): a vLLM preset set with at least one child gets its
  InferencePool and endpoint picker, applied only when absent or different from what is found.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kaito.api import admission, inferenceset, kinds, labels
from kaito.api.admission import AdmissionOptions, ClusterReads
from kaito.api.facts import ModelFacts
from kaito.api.validation import compute_runtime, written_rules
from kaito.cluster import protocol
from kaito.cluster.protocol import Object
from kaito.controller import plan as workspace_plan
from kaito.controller.inferenceset import status as status_mod
from kaito.controller.inferenceset.observe import ObservedSet, is_deleting, is_ready
from kaito.controller.plan import Deletion
from kaito.controller.settings import Settings
from kaito.manifests import gateway
from kaito.manifests import inferenceset as set_manifests
from kaito.manifests import inferenceset_revision as revisions

# Labels put onto existing children by a manager of their own: the controller's creation intent
# (`kaito`, the whole child) is never re-applied, so a template change is never rolled out by it.
LABEL_FIELD_MANAGER = "kaito-inferenceset-labels"
Event = tuple[str, str, str]  # (type, reason, message) about the set


@dataclass(frozen=True, kw_only=True)
class SetPlan:
    set_patch: Object | None = None  # the set's finalizer and revision annotations (controller's manager)
    revision: Object | None = None  # ControllerRevision to create
    create: tuple[Object, ...] = ()  # child Workspaces
    relabel: tuple[Object, ...] = ()  # label-only applies onto children (LABEL_FIELD_MANAGER)
    apply: tuple[Object, ...] = ()  # gateway objects
    delete: tuple[Deletion, ...] = ()  # victims, old revisions, gateway objects no longer wanted
    status: Object | None = None  # the new status, None when unchanged
    requeue_after: float | None = None
    events: tuple[Event, ...] = ()

    @property
    def writes(self) -> int:
        return ((self.set_patch is not None) + (self.revision is not None) + len(self.create) + len(self.relabel)
                + len(self.apply) + len(self.delete) + (self.status is not None))


def replica_ordinal(child: Mapping[str, Any]) -> int | None:
    value = ((child.get("metadata") or {}).get("annotations") or {}).get(set_manifests.ANNOTATION_REPLICA)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def select_victims(children: Sequence[Mapping[str, Any]], desired: int) -> list[Mapping[str, Any]]:
    """The children to delete so that `desired` remain (see the module docstring for the order)."""
    surplus = len(children) - desired
    live = []
    for child in children:
        if is_deleting(child):
            surplus -= 1  # already going: counts toward the target without another delete
        else:
            live.append(child)
    if surplus <= 0:
        return []
    unknown = 1 << 30  # a child without an ordinal (not made by this controller) goes first in its group
    order = sorted(live, key=lambda c: (is_ready(c), -(replica_ordinal(c) if replica_ordinal(c) is not None
                                                       else unknown), c["metadata"]["name"]))
    ready_budget = sum(is_ready(c) for c in live) - desired
    victims: list[Mapping[str, Any]] = []
    for child in order:
        if len(victims) >= surplus:
            break
        if is_ready(child):
            if ready_budget <= 0:
                continue  # would drop the ready replicas below the desired count
            ready_budget -= 1
        victims.append(child)
    return victims


def plan_new_ordinals(children: Sequence[Mapping[str, Any]], taken: frozenset[str], obj: inferenceset.InferenceSet,
                      count: int) -> list[int]:
    """The `count` lowest ordinals no child uses and whose names no Workspace has."""
    used = {o for o in (replica_ordinal(c) for c in children) if o is not None}
    out: list[int] = []
    for ordinal in itertools.count():
        if len(out) >= count:
            return out
        name = set_manifests.compute_child_name(obj.name, obj.metadata.uid or "", ordinal)
        if ordinal not in used and name not in taken:
            out.append(ordinal)
    raise AssertionError("unreachable")


def build_set_patch(raw: Mapping[str, Any], *, finalizer: bool, spec_hash: str | None = None,
                    revision: int | None = None) -> Object:
    """The controller's part of the set's metadata, as its whole intent under its own field manager."""
    meta = raw.get("metadata") or {}
    ours: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    annotations = meta.get("annotations") or {}
    if spec_hash is not None and revision is not None:
        ours["annotations"] = {inferenceset.ANNOTATION_HASH: spec_hash, inferenceset.ANNOTATION_REVISION: str(revision)}
    elif not finalizer:  # releasing: keep the annotations as they are
        kept = {k: annotations[k] for k in (inferenceset.ANNOTATION_HASH, inferenceset.ANNOTATION_REVISION)
                if k in annotations}
        if kept:
            ours["annotations"] = kept
    ours["finalizers"] = [inferenceset.FINALIZER] if finalizer else []
    return {"apiVersion": raw.get("apiVersion"), "kind": raw.get("kind"), "metadata": ours}


def desired_child_labels(obj: inferenceset.InferenceSet) -> dict[str, str]:
    """The labels every child must carry now: the template's, the set's role labels, created-by."""
    built = inferenceset.build_child_workspace(obj, name=f"{obj.name}-x")
    return dict(built.metadata.labels or {})


def plan_relabels(children: Sequence[Mapping[str, Any]], wanted: Mapping[str, str]) -> list[Object]:
    out = []
    for child in children:
        meta = child.get("metadata") or {}
        have = meta.get("labels") or {}
        if is_deleting(child) or all(have.get(k) == v for k, v in wanted.items()):
            continue
        # The resourceVersion read: an apply to a child deleted meanwhile must not create a new one.
        out.append({"apiVersion": child.get("apiVersion"), "kind": child.get("kind"),
                    "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                                 "resourceVersion": meta.get("resourceVersion"), "labels": dict(wanted)}})
    return out


def _recheck(obj: inferenceset.InferenceSet, raw: Mapping[str, Any], facts: ModelFacts,
             settings: Settings) -> tuple[str | None, str | None]:
    """(admission's errors as one message or None, the runtime the children run)."""
    options = AdmissionOptions(url_policy=settings.url_policy, auto_provisioning=settings.provisions_nodes,
                               release_namespace=settings.release_namespace or obj.namespace,
                               vllm_available=settings.vllm_available)
    verdict = admission.admit(dict(raw), facts=facts, options=options, reads=ClusterReads())
    problem = "; ".join(str(e) for e in verdict.errors) or None
    child = inferenceset.build_child_workspace(obj, auto_provisioning=settings.provisions_nodes,
                                               name=f"{obj.name}-x")
    # The children are v1beta1 Workspaces (as KAITO v0.12 creates them): that version's runtime rules.
    runtime = (compute_runtime(child, facts, options, rules=written_rules(child))
               if child.inference and child.inference.preset else None)
    return problem, runtime


def _plan_gateway(observed: ObservedSet, obj: inferenceset.InferenceSet, runtime: str | None,
                  settings: Settings) -> tuple[list[Object], list[Deletion]]:
    if not settings.inferenceset_gateway:
        return [], []
    live = [c for c in observed.children if not is_deleting(c)]
    if not gateway.wants_gateway(obj, runtime or "") or not live:
        gone = [] if gateway.wants_gateway(obj, runtime or "") else list(observed.gateway.values())
        return [], [Deletion(kind=protocol.kind_of(o), name=o["metadata"]["name"], namespace=obj.namespace)
                    for o in gone]
    multi_node = any(int((c.get("status") or {}).get("targetNodeCount") or 1) > 1 for c in live)
    wanted = gateway.build_gateway_objects(gateway.GatewayInputs(inference_set=obj, multi_node=multi_node,
                                                                 epp_image=settings.epp_image))
    apply = [o for o in wanted if not workspace_plan.is_subset(
        o, observed.gateway.get((protocol.kind_of(o).key, o["metadata"]["name"])))]
    return apply, []


def plan_inferenceset(observed: ObservedSet, settings: Settings, facts: ModelFacts, now: datetime) -> SetPlan:
    """Every write of this reconcile; see the module docstring for the rules."""
    raw = observed.inference_set
    if raw is None:
        return SetPlan()
    meta = raw.get("metadata") or {}
    generation = meta.get("generation")
    selector = f"{inferenceset.LABEL_CREATED_BY}={observed.key.name}"
    try:
        obj, _ = kinds.parse_object(raw)
    except kinds.ParseError as exc:
        facts_ = status_mod.SetFacts(generation=generation, desired=0, ready=0, selector=selector, problem=str(exc))
        return _with_status(SetPlan(), raw, facts_, now)
    if meta.get("deletionTimestamp"):
        return plan_deletion(observed, raw, settings, now)

    problem, runtime = _recheck(obj, raw, facts, settings)
    rev = revisions.plan_revision(obj, observed.revisions)
    events: list[Event] = []
    set_patch = None
    annotations = meta.get("annotations") or {}
    if (inferenceset.FINALIZER not in (meta.get("finalizers") or [])
            or annotations.get(inferenceset.ANNOTATION_HASH) != rev.spec_hash
            or annotations.get(inferenceset.ANNOTATION_REVISION) != str(rev.number)):
        set_patch = build_set_patch(raw, finalizer=True, spec_hash=rev.spec_hash, revision=rev.number)
    deletions = [Deletion(kind=protocol.CONTROLLER_REVISION, name=name, namespace=obj.namespace)
                 for name in rev.delete]
    if rev.create is not None:
        events.append(("Normal", "RevisionCreated", f"spec revision {rev.number} ({rev.spec_hash[:10]})"))

    desired = obj.spec.replicas if obj.spec.replicas is not None else inferenceset.DEFAULT_REPLICAS
    children = list(observed.children)
    create: list[Object] = []
    if problem is None:
        inputs = set_manifests.InferenceSetInputs(inference_set=obj, auto_provisioning=settings.provisions_nodes)
        missing = desired - len(children)
        for ordinal in plan_new_ordinals(children, observed.taken, obj, max(0, missing)):
            child = set_manifests.build_named_child(inputs, ordinal)
            create.append(child)
            events.append(("Normal", "WorkspaceCreated", f"replica {ordinal}: Workspace {child['metadata']['name']}"))
        for victim in select_victims(children, desired):
            name = victim["metadata"]["name"]
            deletions.append(Deletion(kind=protocol.WORKSPACE, name=name, namespace=obj.namespace))
            state = "ready" if is_ready(victim) else "not ready"
            events.append(("Normal", "WorkspaceDeleted", f"scaling down to {desired}: Workspace {name} ({state})"))
    relabel = plan_relabels(children, desired_child_labels(obj))
    gateway_apply, gateway_gone = _plan_gateway(observed, obj, runtime, settings) if problem is None else ([], [])
    ready_children = [c for c in children if is_ready(c)]
    benchmarked, total = status_mod.compute_benchmark(ready_children)
    bench = (obj.annotations.get(labels.ANNOTATION_DISABLE_BENCHMARK) != "true" and runtime == labels.RUNTIME_VLLM
             and obj.spec.template.inference.preset is not None)
    set_facts = status_mod.SetFacts(generation=generation, desired=desired, ready=len(ready_children),
                                    selector=selector, benchmark=bench, benchmarked=benchmarked, total_tpm=total,
                                    runtime=runtime, problem=problem)
    plan = SetPlan(set_patch=set_patch, revision=rev.create, create=tuple(create), relabel=tuple(relabel),
                   apply=tuple(gateway_apply), delete=tuple(deletions + gateway_gone))
    on_change = [("Warning", inferenceset.REASON_FAILED, problem)] if problem else []
    return _with_status(plan, raw, set_facts, now, events=events, on_change=on_change)


def plan_deletion(observed: ObservedSet, raw: Mapping[str, Any], settings: Settings, now: datetime) -> SetPlan:
    """Deleting: mark it, delete every child, and release the finalizer once none is left, so that
    the set is gone only when its replicas (their nodes and processes) are."""
    meta = raw.get("metadata") or {}
    facts = status_mod.SetFacts(generation=meta.get("generation"), desired=0, ready=0, selector="", deleting=True)
    if inferenceset.FINALIZER not in (meta.get("finalizers") or []):
        return _with_status(SetPlan(), raw, facts, now)
    live = [c for c in observed.children if not is_deleting(c)]
    deletions = tuple(Deletion(kind=protocol.WORKSPACE, name=c["metadata"]["name"],
                               namespace=meta.get("namespace")) for c in live)
    events = [("Normal", "WorkspaceDeleted", f"deleting Workspace {d.name}") for d in deletions]
    if observed.children:
        return _with_status(SetPlan(delete=deletions, requeue_after=settings.pending_requeue_s), raw, facts, now,
                            events=events)
    release = build_set_patch(raw, finalizer=False)
    return _with_status(SetPlan(set_patch=release), raw, facts, now,
                        events=[("Normal", "FinalizerReleased", "every replica is gone")])


def _with_status(plan: SetPlan, raw: Mapping[str, Any], facts: status_mod.SetFacts, now: datetime, *,
                 events: Sequence[Event] = (), on_change: Sequence[Event] = ()) -> SetPlan:
    old = raw.get("status")
    new = status_mod.compute_set_status(old, facts, now)
    changed = status_mod.status_changed(old, new)
    return dataclasses.replace(plan, status=new if changed else None,
                               events=(*events, *(on_change if changed else ())))
