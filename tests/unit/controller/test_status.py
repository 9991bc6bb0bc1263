"""Status computation: KAITO's conditions and reasons for each phase, stable when nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kaito.controller import status as st

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def conds(status):
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}


def ready_resource(**kw):
    return st.ResourceFacts(needed=1, selected=("n1",), provisioning=True, **kw)


def test_inference_pending_nodes_is_not_a_failure():
    facts = st.StatusFacts(
        kind="inference",
        generation=1,
        resource=st.ResourceFacts(needed=2, selected=(), provisioning=True, claims_pending=2),
    )
    out = st.compute_status(None, facts, NOW)
    c = conds(out)
    assert c["NodeClaimReady"] == ("Unknown", "CreateNodeClaimPending")
    assert c["ResourceReady"] == ("False", st.REASON_RESOURCE_PENDING)
    assert c["WorkspaceSucceeded"] == ("False", "workspacePending")
    assert "InferenceReady" not in c
    assert all(x["observedGeneration"] == 1 for x in out["conditions"])


def test_inference_ready_sets_kaito_success_conditions():
    wl = st.WorkloadFacts(exists=True, current=True, replicas=1, ready_replicas=1, rolled_out=True)
    out = st.compute_status(
        None, st.StatusFacts(kind="inference", generation=3, resource=ready_resource(), workload=wl), NOW
    )
    assert conds(out) == {
        "NodeClaimReady": ("True", "installNodePluginsSuccess"),
        "ResourceReady": ("True", "workspaceResourceStatusSuccess"),
        "InferenceReady": ("True", "WorkspaceInferenceStatusSuccess"),
        "WorkspaceSucceeded": ("True", "workspaceSucceeded"),
    }
    assert out["workerNodes"] == ["n1"]


def test_same_facts_later_give_the_same_status():
    wl = st.WorkloadFacts(exists=True, current=True, replicas=1, ready_replicas=0, rolled_out=True)
    facts = st.StatusFacts(kind="inference", generation=1, resource=ready_resource(), workload=wl)
    first = st.compute_status(None, facts, NOW)
    second = st.compute_status(first, facts, NOW + timedelta(hours=1))
    assert not st.status_changed(first, second)
    assert conds(second)["InferenceReady"] == ("False", st.REASON_INFERENCE_PENDING)


def test_transition_time_moves_only_on_status_change():
    pending = st.WorkloadFacts(exists=True, current=True, replicas=1, ready_replicas=0, rolled_out=True)
    ready = st.WorkloadFacts(exists=True, current=True, replicas=1, ready_replicas=1, rolled_out=True)
    first = st.compute_status(
        None, st.StatusFacts(kind="inference", generation=1, resource=ready_resource(), workload=pending), NOW
    )
    later = NOW + timedelta(minutes=5)
    second = st.compute_status(
        first,
        st.StatusFacts(kind="inference", generation=1, resource=ready_resource(), workload=ready),
        later,
    )
    by_type = {c["type"]: c for c in second["conditions"]}
    assert by_type["InferenceReady"]["lastTransitionTime"].startswith("2026-01-01T00:05")
    assert by_type["ResourceReady"]["lastTransitionTime"].startswith("2026-01-01T00:00")
    assert st.status_changed(first, second)


def test_workload_not_current_or_not_rolled_out_is_not_ready():
    obj = {
        "metadata": {"generation": 2, "annotations": {"workspace.kaito.io/revision": "1"}},
        "spec": {"replicas": 1},
        "status": {"readyReplicas": 1, "observedGeneration": 1},
    }
    assert not st.compute_workload_facts(obj, "1").ready  # controller has not seen generation 2
    obj["status"]["observedGeneration"] = 2
    assert st.compute_workload_facts(obj, "1").ready
    assert not st.compute_workload_facts(obj, "2").ready  # an older revision


def test_tuning_phases():
    def run(job_status, revision="1"):
        obj = {"metadata": {"annotations": {"workspace.kaito.io/revision": revision}}, "status": job_status}
        job = st.compute_job_facts(obj, "1")
        return conds(
            st.compute_status(
                None, st.StatusFacts(kind="tuning", generation=1, resource=ready_resource(), job=job), NOW
            )
        )

    assert run({})["JobStarted"] == ("False", st.REASON_TUNING_JOB_PENDING)
    running = run({"active": 1, "ready": 1})
    assert running["JobStarted"] == ("True", "WorkspaceTuningJobStatusStarted")
    assert running["WorkspaceSucceeded"] == ("False", "workspacePending")
    assert run({"succeeded": 1})["WorkspaceSucceeded"] == ("True", "workspaceSucceeded")
    failed = run(
        {"failed": 3, "conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}
    )
    assert failed["JobStarted"] == ("False", "WorkspaceTuningJobStatusFailed")
    assert failed["WorkspaceSucceeded"] == ("False", "workspaceFailed")
    assert run({"succeeded": 1}, revision="0")["WorkspaceSucceeded"] == ("False", "workspacePending")


def test_user_problem_becomes_condition_and_failed():
    facts = st.StatusFacts(
        kind="inference", generation=1, problem=("InferenceReady", "InvalidPreset", "no such preset")
    )
    c = conds(st.compute_status(None, facts, NOW))
    assert c == {
        "InferenceReady": ("False", "InvalidPreset"),
        "WorkspaceSucceeded": ("False", "workspaceFailed"),
    }


def test_deleting_and_claim_failure():
    c = conds(st.compute_status(None, st.StatusFacts(kind="inference", generation=1, deleting=True), NOW))
    assert c == {"WorkspaceDeleting": ("True", "workspaceDeleted")}
    res = st.ResourceFacts(needed=1, selected=(), provisioning=True, claim_failures=("no capacity",))
    c = conds(st.compute_status(None, st.StatusFacts(kind="inference", generation=1, resource=res), NOW))
    assert c["NodeClaimReady"] == ("False", "checkNodeClaimStatusFailed")
    assert c["WorkspaceSucceeded"] == ("False", "workspaceFailed")


def test_unowned_status_fields_are_kept():
    out = st.compute_status(
        {"targetNodeCount": 2}, st.StatusFacts(kind="inference", generation=1, deleting=True), NOW
    )
    assert out["targetNodeCount"] == 2


def _inference_conds(obj, revision="1"):
    facts = st.StatusFacts(
        kind="inference", generation=1, resource=ready_resource(), workload=st.compute_workload_facts(obj, revision)
    )
    out = st.compute_status(None, facts, NOW)
    return conds(out), {c["type"]: c["message"] for c in out["conditions"]}


def _workload(kind="Deployment", conditions=(), ready=0, generation=1, observed=1, revision="1"):
    return {
        "kind": kind,
        "metadata": {"generation": generation, "annotations": {"workspace.kaito.io/revision": revision}},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": observed, "readyReplicas": ready, "conditions": list(conditions)},
    }


NEEDS_CLUSTER = {
    "type": "Progressing",
    "status": "False",
    "reason": "ImageNeedsCluster",
    "message": "container web: image nginx:1.27 is not kaito's runtime image; it needs a Kubernetes cluster",
}


def test_stalled_workload_conditions_fail_the_workspace_with_their_reason():
    deadline = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "ws-1" has timed out progressing.'}  # fmt: skip
    quota = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "exceeded quota"}
    for kind, cond in [("Deployment", deadline), ("Deployment", NEEDS_CLUSTER), ("StatefulSet", NEEDS_CLUSTER),
                       ("Deployment", quota)]:  # fmt: skip
        c, messages = _inference_conds(_workload(kind, [{"type": "Available", "status": "False"}, cond]))
        assert c["InferenceReady"] == ("False", cond["reason"]), kind
        assert messages["InferenceReady"] == cond["message"]
        assert c["WorkspaceSucceeded"] == ("False", "workspaceFailed")
        assert messages["WorkspaceSucceeded"] == cond["message"]


def test_progressing_workload_or_a_stale_stall_is_only_pending():
    progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
    no_failure = {"type": "ReplicaFailure", "status": "False", "reason": "Fine"}
    for obj, revision in [
        (_workload(conditions=[progressing, no_failure]), "1"),
        (_workload(conditions=[NEEDS_CLUSTER], generation=2, observed=1), "1"),  # not yet seen the new spec
        (_workload(conditions=[NEEDS_CLUSTER], revision="1"), "2"),  # the stall of an older revision
    ]:
        c, _ = _inference_conds(obj, revision)
        assert c["InferenceReady"] == ("False", st.REASON_INFERENCE_PENDING)
        assert c["WorkspaceSucceeded"] == ("False", "workspacePending")
    c, _ = _inference_conds(_workload(conditions=[NEEDS_CLUSTER], ready=1))  # ready wins
    assert c["InferenceReady"] == ("True", "WorkspaceInferenceStatusSuccess")


def test_a_job_that_could_not_run_names_why():
    def run(reason):
        cond = {"type": "Failed", "status": "True", "reason": reason, "message": "image nginx:1 needs a cluster"}
        job = st.compute_job_facts({"metadata": {}, "status": {"failed": 1, "conditions": [cond]}}, None)
        out = st.compute_status(
            None, st.StatusFacts(kind="tuning", generation=1, resource=ready_resource(), job=job), NOW
        )
        return conds(out), {c["type"]: c["message"] for c in out["conditions"]}

    c, messages = run("ImageNeedsCluster")
    assert c["JobStarted"] == ("False", "ImageNeedsCluster")
    assert c["WorkspaceSucceeded"] == ("False", "workspaceFailed")
    assert "nginx:1 needs a cluster" in messages["JobStarted"] and "nginx:1" in messages["WorkspaceSucceeded"]
    for ran in ("BackoffLimitExceeded", "DeadlineExceeded"):  # it ran and failed: KAITO's reason
        assert run(ran)[0]["JobStarted"] == ("False", "WorkspaceTuningJobStatusFailed")


def test_the_outcome_a_waiter_sees_matches_what_status_computation_sets():
    """`kaito apply --wait` ends on `compute_outcome`: every failure computed here is FAILED, every
    success SUCCEEDED, and waiting is PENDING (it once matched a reason nothing ever set)."""
    from kaito.api.conditions import ConditionReason, ConditionType, Outcome, compute_outcome

    def outcome(facts):
        return compute_outcome(st.compute_status(None, facts, NOW)["conditions"])

    stalled = st.WorkloadFacts(exists=True, current=True, replicas=1, rolled_out=True,
                               stalled=("ProgressDeadlineExceeded", "too slow"))
    failed_job = st.JobFacts(exists=True, current=True, failed=True, failure_reason="BackoffLimitExceeded")
    failures = [
        st.StatusFacts(kind="inference", generation=1,
                       problem=(ConditionType.INFERENCE_READY, ConditionReason.VALIDATION_FAILED, "bad")),
        st.StatusFacts(kind="inference", generation=1,
                       problem=(ConditionType.INFERENCE_READY, ConditionReason.WORKLOAD_REJECTED, "refused")),
        st.StatusFacts(kind="inference", generation=1, resource=ready_resource(), workload=stalled),
        st.StatusFacts(kind="tuning", generation=1, resource=ready_resource(), job=failed_job),
        st.StatusFacts(kind="inference", generation=1, resource=st.ResourceFacts(
            needed=1, selected=(), provisioning=True, claim_failures=("NodeClaim c: no capacity",))),
    ]
    assert [outcome(f) for f in failures] == [Outcome.FAILED] * len(failures)
    ready = st.WorkloadFacts(exists=True, current=True, replicas=1, ready_replicas=1, rolled_out=True)
    done = st.JobFacts(exists=True, current=True, succeeded=1)
    assert outcome(st.StatusFacts(kind="inference", generation=1, resource=ready_resource(), workload=ready)) \
        == Outcome.SUCCEEDED
    assert outcome(st.StatusFacts(kind="tuning", generation=1, resource=ready_resource(), job=done)) == Outcome.SUCCEEDED
    pending = st.StatusFacts(kind="inference", generation=1, resource=st.ResourceFacts(
        needed=1, selected=(), provisioning=True, claims_pending=1))
    assert outcome(pending) == Outcome.PENDING
    assert compute_outcome([]) == Outcome.PENDING
