"""Plan: from what was observed to what must be written (pure).

Given an `Observed` and the controller's `Settings`, `plan_workspace` decides every write of one
reconcile: the Workspace's own metadata (finalizer, revision annotations), the ControllerRevision,
the NodeClaims still missing, the Services and the workload, deletions, the status, and when to
look again. Nothing here touches the cluster, sleeps or reads the clock (`now` is an argument).

Rules that keep a steady state at zero writes and keep users' hand edits:
* a workload or Job whose `workspace.kaito.io/revision` is current is not re-applied (KAITO's
  behaviour: `kubectl edit deployment` survives until the Workspace spec changes);
* any other owned object is applied only when absent or when what we want is not already there;
* the status is written only when it differs from the stored one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kaito.api import conversion, labels
from kaito.api.conditions import ConditionReason, ConditionType
from kaito.api.hub import Workspace
from kaito.catalog import outside
from kaito.cluster import protocol
from kaito.cluster.protocol import Object, ResourceKind
from kaito.controller import desired, nodes, recheck, status
from kaito.controller.observe import Observed
from kaito.controller.settings import Settings
from kaito.manifests import revision as revisions

REASON_INVALID_WORKSPACE = ConditionReason.VALIDATION_FAILED
REASON_INVALID_WORKLOAD = ConditionReason.WORKLOAD_REJECTED


@dataclass(frozen=True, kw_only=True)
class Deletion:
    kind: ResourceKind
    name: str
    namespace: str | None = None
    # Foreground: the object stays (deleting) until its dependents are gone. A replaced tuning Job
    # needs it, as in KAITO: the old trainer pod must release its GPU before the new Job is created.
    propagation: protocol.Propagation = "Background"


@dataclass(frozen=True, kw_only=True)
class Plan:
    workspace_patch: Object | None = None  # applied first, under WORKSPACE_FIELD_MANAGER
    revision: Object | None = None  # ControllerRevision to create
    nodeclaims: tuple[Object, ...] = ()  # created only if absent (never re-applied)
    apply: tuple[Object, ...] = ()  # owned objects, in order (Services before the workload)
    delete: tuple[Deletion, ...] = ()
    status_facts: status.StatusFacts | None = None
    status: Object | None = None  # the new status, None when unchanged
    requeue_after: float | None = None
    events: tuple[tuple[str, str, str], ...] = ()  # (type, reason, message) about the Workspace

    @property
    def writes(self) -> int:
        """How many writes executing this plan makes (events aside)."""
        return (
            (self.workspace_patch is not None)
            + (self.revision is not None)
            + len(self.nodeclaims)
            + len(self.apply)
            + len(self.delete)
            + (self.status is not None)
        )


def compute_kind(ws: Workspace) -> status.WorkloadKind:
    return "tuning" if ws.tuning is not None else "inference"


def compute_kind_of_raw(raw: Mapping[str, Any]) -> status.WorkloadKind:
    return "tuning" if raw.get("tuning") is not None else "inference"


def is_subset(want: Any, have: Any) -> bool:
    """Whether every field of `want` is in `have` with the same value (lists compared item by item).

    The API server adds defaults and bookkeeping; those extra fields are not a reason to write.
    """
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(k in have and is_subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(is_subset(a, b) for a, b in zip(want, have, strict=True))
        )
    return want == have


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def plan_workspace(observed: Observed, settings: Settings, now: datetime) -> Plan:
    """Everything this reconcile must write; see the module docstring for the rules."""
    raw = observed.workspace
    if raw is None:
        return Plan()
    meta = raw.get("metadata") or {}
    generation = meta.get("generation")
    try:
        ws, _ = conversion.parse_workspace(raw)
    except conversion.ParseError as exc:
        problem = (ConditionType.WORKSPACE_SUCCEEDED, REASON_INVALID_WORKSPACE, str(exc))
        facts = status.StatusFacts(kind=compute_kind_of_raw(raw), generation=generation, problem=problem)
        return _with_status(Plan(status_facts=facts), raw, now)

    if meta.get("deletionTimestamp"):
        return plan_deletion(observed, ws, raw, now)

    events: list[tuple[str, str, str]] = []
    kind = compute_kind(ws)
    checked = recheck.recheck_workspace(ws, raw, observed, settings)
    problem = checked.problem
    preset = _preset_of(ws) if problem is None else None
    target = recheck.compute_target_node_count(ws, preset, checked.runtime, checked.max_model_len, settings)
    existing = list(observed.revisions)
    rev = revisions.plan_revision(ws, existing)
    revision_no = str(rev.number)
    workspace_patch = _plan_workspace_patch(raw, rev.spec_hash, revision_no)
    deletions = [Deletion(kind=protocol.CONTROLLER_REVISION, name=name, namespace=ws.namespace) for name in rev.delete]
    if rev.create is not None:
        events.append(("Normal", "RevisionCreated", f"spec revision {revision_no} ({rev.spec_hash[:10]})"))
    if problem is not None:
        facts = status.StatusFacts(kind=kind, generation=generation, problem=problem, target_node_count=target)
        # A ConfigMap it names may be created next: look again (no watch maps ConfigMaps to Workspaces).
        requeue = settings.pending_requeue_s if checked.missing_configmap else None
        plan = Plan(workspace_patch=workspace_patch, revision=rev.create, delete=tuple(deletions), status_facts=facts,
                    requeue_after=requeue)
        # Warn once, when the condition is first recorded, not on every resync.
        return _with_status(plan, raw, now, events=events, on_change=[("Warning", problem[1], problem[2])])

    request = _node_request(ws, raw)
    selection = nodes.plan_nodes(
        request, observed.nodes, observed.nodeclaims, provision=settings.provisions_nodes
    )
    claims = tuple(desired.build_missing_nodeclaims(ws, preset, selection.claims_to_create, settings))
    for claim in claims:
        events.append(("Normal", "NodeClaimCreated", f"creating NodeClaim {claim['metadata']['name']}"))
    resource = status.ResourceFacts(
        needed=request.count,
        selected=selection.selected,
        provisioning=settings.provisions_nodes,
        claims_pending=len(selection.claims_in_flight) + len(claims),
        claim_failures=tuple(f"NodeClaim {n}: {m}" for n, m in selection.claims_failed),
    )
    pending = {"target_node_count": target, "access_warning": checked.access_warning}
    if not resource.ready:
        facts = status.StatusFacts(kind=kind, generation=generation, resource=resource, **pending)
        plan = Plan(workspace_patch=workspace_patch, revision=rev.create, nodeclaims=claims, delete=tuple(deletions),
                    status_facts=facts, requeue_after=settings.pending_requeue_s)
        return _with_status(plan, raw, now, events=events)

    gpu = desired.compute_gpu_facts(ws, observed.nodes, selection.selected, settings)
    wanted = desired.build_owned_objects(ws, preset, gpu, rev.number, settings, engine=checked.runtime)
    to_apply: list[Object] = []
    requeue: float | None = None
    workload_facts: status.WorkloadFacts | None = None
    job_facts: status.JobFacts | None = None
    for obj in wanted:
        okind = protocol.kind_of(obj)
        name = obj["metadata"]["name"]
        have = observed.owned_object(okind, name)
        if okind in (protocol.DEPLOYMENT, protocol.STATEFULSET):
            if have is None or _annotations(have).get(labels.ANNOTATION_REVISION) != revision_no:
                to_apply.append(obj)
                verb = "created" if have is None else f"updated to revision {revision_no}"
                events.append(("Normal", "WorkloadApplied", f"{okind.kind} {name} {verb}"))
            workload_facts = status.compute_workload_facts(have, revision_no)
        elif okind == protocol.JOB:
            if have is None:
                to_apply.append(obj)
                events.append(
                    ("Normal", "TuningJobCreated", f"Job {name} created for revision {revision_no}")
                )
            elif _annotations(have).get(labels.ANNOTATION_REVISION) != revision_no:
                # A Job's pod template is immutable: a new revision replaces the Job. It is created
                # once the old one is gone (the deletion's watch event brings us back).
                if not (have.get("metadata") or {}).get("deletionTimestamp"):
                    deletions.append(Deletion(kind=protocol.JOB, name=name, namespace=ws.namespace,
                                              propagation="Foreground"))
                    events.append(
                        ("Normal", "TuningJobReplaced", f"Job {name} replaced for revision {revision_no}")
                    )
                requeue = settings.pending_requeue_s
            job_facts = status.compute_job_facts(have, revision_no)
        elif have is None or not is_subset(_comparable(obj), have):
            to_apply.append(obj)
    deletions.extend(_stale_workloads(observed, wanted))
    facts = status.StatusFacts(
        kind=kind, generation=generation, resource=resource, workload=workload_facts, job=job_facts, **pending
    )
    plan = Plan(workspace_patch=workspace_patch, revision=rev.create, nodeclaims=claims, apply=tuple(to_apply),
                delete=tuple(deletions), status_facts=facts, requeue_after=requeue)
    return _with_status(plan, raw, now, events=events)


def plan_rejected(observed: Observed, message: str, now: datetime) -> Plan:
    """The API server refused an object built from the user's spec (a bad pod template, say): only a
    spec change can fix that, so the plan is the condition saying so and nothing else."""
    raw = observed.workspace
    if raw is None:
        return Plan()
    facts = status.StatusFacts(
        kind=compute_kind_of_raw(raw),
        generation=(raw.get("metadata") or {}).get("generation"),
        problem=(ConditionType.INFERENCE_READY, REASON_INVALID_WORKLOAD, message),
    )
    return _with_status(Plan(status_facts=facts), raw, now)


def plan_deletion(observed: Observed, ws: Workspace, raw: Mapping[str, Any], now: datetime) -> Plan:
    """Deleting: mark it, delete our NodeClaims (GC cannot reach them), then release the finalizer."""
    facts = status.StatusFacts(
        kind=compute_kind(ws), generation=(raw.get("metadata") or {}).get("generation"), deleting=True
    )
    finalizers = (raw.get("metadata") or {}).get("finalizers") or []
    if labels.FINALIZER_WORKSPACE not in finalizers:
        return _with_status(Plan(status_facts=facts), raw, now)
    live = [c for c in observed.nodeclaims if not (c.get("metadata") or {}).get("deletionTimestamp")]
    deletions = tuple(Deletion(kind=protocol.NODECLAIM, name=c["metadata"]["name"]) for c in live)
    events = [("Normal", "NodeClaimDeleted", f"deleting NodeClaim {d.name}") for d in deletions]
    if observed.nodeclaims:
        plan = Plan(delete=deletions, status_facts=facts, requeue_after=1.0)
        return _with_status(plan, raw, now, events=events)
    release = build_workspace_patch(raw, finalizer=False)
    events.append(("Normal", "FinalizerReleased", "all NodeClaims are gone"))
    return _with_status(Plan(workspace_patch=release, status_facts=facts), raw, now, events=events)


def build_workspace_patch(
    raw: Mapping[str, Any], *, finalizer: bool, spec_hash: str | None = None, revision: str | None = None
) -> Object:
    """Our part of the Workspace's metadata, applied as the controller's whole intent."""
    meta = raw.get("metadata") or {}
    annotations = dict(_annotations(raw))
    ours: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    wanted_annotations = {}
    if spec_hash is not None and revision is not None:
        wanted_annotations = {labels.ANNOTATION_HASH: spec_hash, labels.ANNOTATION_REVISION: revision}
    elif not finalizer:
        wanted_annotations = {
            k: annotations[k]
            for k in (labels.ANNOTATION_HASH, labels.ANNOTATION_REVISION)
            if k in annotations
        }
    if wanted_annotations:
        ours["annotations"] = wanted_annotations
    ours["finalizers"] = [labels.FINALIZER_WORKSPACE] if finalizer else []
    return {"apiVersion": raw.get("apiVersion"), "kind": raw.get("kind"), "metadata": ours}


def _plan_workspace_patch(raw: Mapping[str, Any], spec_hash: str, revision_no: str) -> Object | None:
    meta = raw.get("metadata") or {}
    annotations = _annotations(raw)
    if (
        labels.FINALIZER_WORKSPACE in (meta.get("finalizers") or [])
        and annotations.get(labels.ANNOTATION_HASH) == spec_hash
        and annotations.get(labels.ANNOTATION_REVISION) == revision_no
    ):
        return None
    return build_workspace_patch(raw, finalizer=True, spec_hash=spec_hash, revision=revision_no)


def _stale_workloads(observed: Observed, wanted: list[Object]) -> list[Deletion]:
    """Our workload of the other kind (Deployment vs StatefulSet) when the preset's shape changed."""
    names = {(protocol.kind_of(o).key, o["metadata"]["name"]) for o in wanted}
    out = []
    for (kind_key, name), obj in observed.owned.items():
        kind = protocol.kind_of(obj)
        if kind in (protocol.DEPLOYMENT, protocol.STATEFULSET) and (kind_key, name) not in names:
            out.append(Deletion(kind=kind, name=name, namespace=observed.key.namespace))
    return out


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    # `status` is never applied (the API server ignores it), so it is never a reason to apply.
    return {k: v for k, v in obj.items() if k != "status"}


def _preset_of(ws: Workspace):
    spec = ws.tuning.preset if ws.tuning is not None else (ws.inference.preset if ws.inference else None)
    return outside.resolve_preset(spec.name) if spec is not None else None


def _node_request(ws: Workspace, raw: Mapping[str, Any]) -> nodes.NodeRequest:
    resource = ws.resource
    previous = ((raw.get("status") or {}).get("workerNodes")) or []
    return nodes.NodeRequest(
        namespace=ws.namespace,
        name=ws.name,
        count=(resource.count if resource and resource.count else 1),
        instance_type=resource.instance_type if resource else None,
        match_labels=dict((resource.label_selector.match_labels if resource else None) or {}),
        preferred=frozenset((resource.preferred_nodes if resource else None) or ()),
        previous=frozenset(previous),
    )


def _with_status(plan: Plan, raw: Mapping[str, Any], now: datetime, *, events=(), on_change=()) -> Plan:
    assert plan.status_facts is not None
    old = raw.get("status")
    new = status.compute_status(old, plan.status_facts, now)
    changed = new if status.status_changed(old, new) else None
    if changed is not None:
        events = [*events, *on_change]
    return dataclasses.replace(plan, status=changed, events=tuple(events))
