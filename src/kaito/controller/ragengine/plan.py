"""Plan: from what was observed about a RAGEngine to what must be written (pure).

`plan_ragengine` decides every write of one reconcile: the engine's finalizer and revision
annotations, the ControllerRevision, a GPU NodeClaim when `compute.instanceType` asks for one, the
Service and the Deployment (built by `kaito.manifests.ragengine`, so `kaito render` shows the same),
deletions, the status, and when to look again. The stored engine is re-checked with admission's
rules first (it may have been written past the webhook): a spec that fails them is a condition.

The inference endpoint: when `inferenceService.url` names a Workspace, the pods get that Workspace's
Service as the cluster reaches it (`target`). On the local cluster that address is a ready pod's
local port, unknown until the Workspace serves: the Deployment is then held back (not created with
an address that would change under it), or, when it runs already, kept on the address it has until
the new one is known — a changed address re-applies the Deployment.

Rules that keep a steady state at zero writes: the Deployment is re-applied only for a new revision
or a moved endpoint (a hand edit survives, as in KAITO), the Service only when what we want is not
there, the status only when it changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kaito.api import kinds, ragengine
from kaito.api.admission import AdmissionOptions, admit
from kaito.catalog import facts as catalog_facts
from kaito.catalog import skus
from kaito.cluster import protocol
from kaito.cluster.protocol import Object
from kaito.controller import nodes, status
from kaito.controller.desired import image_settings
from kaito.controller.plan import Deletion, is_subset
from kaito.controller.ragengine import status as rag_status
from kaito.controller.ragengine.observe import Observed
from kaito.controller.settings import Settings
from kaito.manifests import ragengine as rag_manifests
from kaito.manifests import ragengine_revision

ENV_LLM_URL = "LLM_INFERENCE_URL"


@dataclass(frozen=True, kw_only=True)
class RAGPlan:
    metadata_patch: Object | None = None  # the engine's finalizer and revision annotations
    revision: Object | None = None
    nodeclaims: tuple[Object, ...] = ()
    apply: tuple[Object, ...] = ()  # Service before Deployment
    delete: tuple[Deletion, ...] = ()
    status_facts: rag_status.StatusFacts | None = None
    status: Object | None = None  # the new status; None when unchanged
    requeue_after: float | None = None
    events: tuple[tuple[str, str, str], ...] = ()

    @property
    def workspace_patch(self) -> Object | None:
        """The name `execute.execute_plan` reads the reconciled object's own patch by."""
        return self.metadata_patch

    @property
    def writes(self) -> int:
        return ((self.metadata_patch is not None) + (self.revision is not None) + len(self.nodeclaims)
                + len(self.apply) + len(self.delete) + (self.status is not None))


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def build_metadata_patch(raw: Mapping[str, Any], *, finalizer: bool, spec_hash: str | None = None,
                         revision: str | None = None) -> Object:
    """Our part of the engine's metadata, applied as the controller's whole intent."""
    meta = raw.get("metadata") or {}
    ours: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace")}
    keys = (ragengine.ANNOTATION_HASH, ragengine.ANNOTATION_REVISION)
    if spec_hash is not None and revision is not None:
        ours["annotations"] = {ragengine.ANNOTATION_HASH: spec_hash, ragengine.ANNOTATION_REVISION: revision}
    elif not finalizer and any(k in _annotations(raw) for k in keys):
        ours["annotations"] = {k: _annotations(raw)[k] for k in keys if k in _annotations(raw)}
    ours["finalizers"] = [ragengine.FINALIZER] if finalizer else []
    return {"apiVersion": raw.get("apiVersion"), "kind": raw.get("kind"), "metadata": ours}


def _plan_metadata_patch(raw: Mapping[str, Any], spec_hash: str, revision: str) -> Object | None:
    if (ragengine.FINALIZER in ((raw.get("metadata") or {}).get("finalizers") or [])
            and _annotations(raw).get(ragengine.ANNOTATION_HASH) == spec_hash
            and _annotations(raw).get(ragengine.ANNOTATION_REVISION) == revision):
        return None
    return build_metadata_patch(raw, finalizer=True, spec_hash=spec_hash, revision=revision)


def recheck(obj: Mapping[str, Any], settings: Settings, namespace: str) -> str | None:
    """Admission's errors for the stored engine, as one message; None when it passes."""
    options = AdmissionOptions(url_policy=settings.url_policy, auto_provisioning=settings.provisions_nodes,
                               release_namespace=settings.release_namespace or namespace)
    verdict = admit(obj, facts=catalog_facts.build_catalog_facts(settings.cloud), options=options)
    return "; ".join(str(e) for e in verdict.errors) or None


def current_llm_url(deployment: Mapping[str, Any] | None) -> str | None:
    """`LLM_INFERENCE_URL` of a Deployment's first container, as it runs now."""
    template = (((deployment or {}).get("spec") or {}).get("template") or {})
    containers = (template.get("spec") or {}).get("containers") or []
    for item in (containers[0].get("env") or []) if containers else []:
        if item.get("name") == ENV_LLM_URL:
            return item.get("value")
    return None


def plan_ragengine(observed: Observed, settings: Settings, now: datetime) -> RAGPlan:
    """Everything this reconcile must write; see the module docstring for the rules."""
    raw = observed.ragengine
    if raw is None:
        return RAGPlan()
    generation = (raw.get("metadata") or {}).get("generation")
    try:
        obj, _ = kinds.parse_object(raw)
    except kinds.ParseError as exc:
        return _problem(raw, generation, str(exc), now)
    if (raw.get("metadata") or {}).get("deletionTimestamp"):
        return plan_deletion(observed, raw, now)
    obj = ragengine.default_ragengine(obj)
    events: list[tuple[str, str, str]] = []
    rev = ragengine_revision.plan_revision(obj, observed.revisions)
    revision_no = str(rev.number)
    patch = _plan_metadata_patch(raw, rev.spec_hash, revision_no)
    deletions = [Deletion(kind=protocol.CONTROLLER_REVISION, name=n, namespace=obj.namespace) for n in rev.delete]
    if rev.create is not None:
        events.append(("Normal", "RevisionCreated", f"spec revision {revision_no} ({rev.spec_hash[:10]})"))
    problem = recheck(raw, settings, obj.namespace)
    if problem is not None:
        plan = RAGPlan(metadata_patch=patch, revision=rev.create, delete=tuple(deletions))
        return _problem(raw, generation, problem, now, plan=plan, events=events)

    compute = obj.spec.compute if obj.spec is not None else None
    gpu = skus.lookup_sku(compute.instance_type, settings.cloud) if compute and compute.instance_type else None
    inputs = rag_manifests.RAGEngineInputs(ragengine=obj, images=image_settings(settings), gpu=gpu,
                                           revision=rev.number, cloud=settings.cloud,
                                           provision_nodes=settings.provisions_nodes)
    claims, resource = _plan_node(observed, inputs, settings)
    events += [("Normal", "NodeClaimCreated", f"creating NodeClaim {c['metadata']['name']}") for c in claims]
    base = RAGPlan(metadata_patch=patch, revision=rev.create, nodeclaims=claims, delete=tuple(deletions))
    if resource is not None and not resource.ready:
        facts = rag_status.StatusFacts(generation=generation, resource=resource)
        return _with_status(dataclasses.replace(base, status_facts=facts, requeue_after=settings.pending_requeue_s),
                            raw, now, events=events)

    target = observed.target
    target_facts = None
    held = None
    url: str | None = None  # None: the spec's url, as written
    if target is not None and target.workspace is not None:
        target_facts = rag_status.compute_target_facts(target.name, target.workspace)
        if target.base_url is not None:
            url = target.base_url + target.path
        else:
            held = (f"waiting for Workspace {target.name} to serve: the address of its model server on this "
                    "cluster is known only then")
    have = observed.owned_object(protocol.DEPLOYMENT, obj.name)
    if held is not None and have is not None:
        url, held = current_llm_url(have), None  # keep the address it runs with until the new one is known
    wanted = rag_manifests.build_ragengine_objects(dataclasses.replace(inputs, inference_url=url))
    to_apply: list[Object] = []
    for want in wanted:
        kind = protocol.kind_of(want)
        if kind == protocol.NODECLAIM:
            continue  # planned with the nodes above
        existing = observed.owned_object(kind, want["metadata"]["name"])
        if kind != protocol.DEPLOYMENT:
            if existing is None or not is_subset(want, existing):
                to_apply.append(want)
            continue
        if held is not None:
            continue
        stale = existing is not None and _annotations(existing).get(ragengine.ANNOTATION_REVISION) != revision_no
        moved = existing is not None and current_llm_url(existing) != current_llm_url(want)
        if existing is None or stale or moved:
            to_apply.append(want)
            verb = ("created" if existing is None else f"updated to revision {revision_no}" if stale
                    else f"pointed at {current_llm_url(want)}")
            events.append(("Normal", "WorkloadApplied", f"Deployment {obj.name} {verb}"))
    service = None
    if have is not None:
        service = status.compute_workload_facts(have, None)
        service = dataclasses.replace(service, current=_annotations(have).get(ragengine.ANNOTATION_REVISION)
                                      == revision_no)
    facts = rag_status.StatusFacts(generation=generation, resource=resource, service=service, held=held,
                                   target=target_facts)
    requeue = settings.pending_requeue_s if held is not None else None
    plan = dataclasses.replace(base, apply=tuple(to_apply), status_facts=facts, requeue_after=requeue)
    return _with_status(plan, raw, now, events=events)


def _plan_node(observed: Observed, inputs: rag_manifests.RAGEngineInputs, settings: Settings
               ) -> tuple[tuple[Object, ...], status.ResourceFacts | None]:
    """A GPU node of its own, when `compute.instanceType` names a GPU SKU: (claims to create, facts).
    Provisioned as a NodeClaim, or with bring-your-own nodes one of them chosen; any other engine has
    no node of its own (the scheduler places its pod by `compute.labelSelector`)."""
    compute = inputs.ragengine.spec.compute if inputs.ragengine.spec is not None else None
    if compute is None or not compute.instance_type or inputs.gpu_count <= 0:
        return (), None
    claim = rag_manifests.build_nodeclaim(inputs)
    raw = observed.ragengine or {}
    request = nodes.NodeRequest(
        namespace=inputs.ragengine.namespace, name=inputs.ragengine.name, count=1,
        instance_type=compute.instance_type,
        match_labels=dict(compute.label_selector.match_labels or {}) if compute.label_selector else {},
        preferred=frozenset(compute.preferred_nodes or ()),
        previous=frozenset((raw.get("status") or {}).get("workerNodes") or ()))
    selection = nodes.plan_nodes(request, observed.nodes, observed.nodeclaims, provision=settings.provisions_nodes)
    claims = (claim,) if selection.claims_to_create and claim is not None else ()
    facts = status.ResourceFacts(
        needed=1, selected=selection.selected, provisioning=settings.provisions_nodes,
        claims_pending=len(selection.claims_in_flight) + len(claims),
        claim_failures=tuple(f"NodeClaim {n}: {m}" for n, m in selection.claims_failed))
    return claims, facts


def plan_rejected(observed: Observed, message: str, now: datetime) -> RAGPlan:
    """The API server refused an object built from the spec: only a spec change can fix that."""
    raw = observed.ragengine
    if raw is None:
        return RAGPlan()
    facts = rag_status.StatusFacts(generation=(raw.get("metadata") or {}).get("generation"),
                                   problem=(ragengine.CONDITION_SERVICE_READY, ragengine.REASON_WORKLOAD_REJECTED,
                                            message))
    return _with_status(RAGPlan(status_facts=facts), raw, now)


def plan_deletion(observed: Observed, raw: Mapping[str, Any], now: datetime) -> RAGPlan:
    """Deleting: mark it, delete its NodeClaims (GC cannot reach them), then release the finalizer."""
    facts = rag_status.StatusFacts(generation=(raw.get("metadata") or {}).get("generation"), deleting=True)
    if ragengine.FINALIZER not in ((raw.get("metadata") or {}).get("finalizers") or []):
        return _with_status(RAGPlan(status_facts=facts), raw, now)
    live = [c for c in observed.nodeclaims if not (c.get("metadata") or {}).get("deletionTimestamp")]
    deletions = tuple(Deletion(kind=protocol.NODECLAIM, name=c["metadata"]["name"]) for c in live)
    events = [("Normal", "NodeClaimDeleted", f"deleting NodeClaim {d.name}") for d in deletions]
    if observed.nodeclaims:
        return _with_status(RAGPlan(delete=deletions, status_facts=facts, requeue_after=1.0), raw, now, events=events)
    events.append(("Normal", "FinalizerReleased", "the RAGEngine's node claims are gone"))
    return _with_status(RAGPlan(metadata_patch=build_metadata_patch(raw, finalizer=False), status_facts=facts),
                        raw, now, events=events)


def _problem(raw: Mapping[str, Any], generation: int | None, message: str, now: datetime, *,
             plan: RAGPlan | None = None, events=()) -> RAGPlan:
    facts = rag_status.StatusFacts(generation=generation, problem=(
        ragengine.CONDITION_SUCCEEDED, ragengine.REASON_VALIDATION_FAILED, message))
    plan = dataclasses.replace(plan or RAGPlan(), status_facts=facts)
    # Warn once, when the condition is first recorded, not on every resync.
    return _with_status(plan, raw, now, events=events,
                        on_change=[("Warning", ragengine.REASON_VALIDATION_FAILED, message)])


def _with_status(plan: RAGPlan, raw: Mapping[str, Any], now: datetime, *, events=(), on_change=()) -> RAGPlan:
    assert plan.status_facts is not None
    old = raw.get("status")
    new = rag_status.compute_status(old, plan.status_facts, now)
    changed = new if rag_status.status_changed(old, new) else None
    if changed is not None:
        events = [*events, *on_change]
    return dataclasses.replace(plan, status=changed, events=tuple(events))
