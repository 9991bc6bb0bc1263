"""Which URLs name a Workspace (`kaito.controller.ragengine.target`), and the RAGEngine status table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kaito.controller.ragengine import status
from kaito.controller.ragengine.target import ClusterDNS, WorkspaceTarget, find_workspace_target
from kaito.controller.status import ResourceFacts, WorkloadFacts

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("url", "expected"), [
    ("http://phi/v1/chat/completions", WorkspaceTarget("phi", "/v1/chat/completions")),
    ("http://phi", WorkspaceTarget("phi", "/v1/chat/completions")),  # no path: the chat API
    ("http://phi/", WorkspaceTarget("phi", "/v1/chat/completions")),
    ("http://phi:80/v1/completions?x=1", WorkspaceTarget("phi", "/v1/completions?x=1")),
    ("http://phi.team/v1/chat/completions", WorkspaceTarget("phi", "/v1/chat/completions")),
    ("http://phi.team.svc/v1/chat/completions", WorkspaceTarget("phi", "/v1/chat/completions")),
    ("http://phi.team.svc.cluster.local/v1/chat/completions", WorkspaceTarget("phi", "/v1/chat/completions")),
    ("http://phi.other/v1/chat/completions", None),  # another namespace: not "a Workspace in the same namespace"
    ("http://phi.team.example.com/v1", None),
    ("http://llm.example.com/v1/chat/completions", None),
    ("https://phi/v1/chat/completions", None),  # a Workspace's Service speaks plain http on 80
    ("http://phi:5000/v1/chat/completions", None),
    ("http://10.0.0.1/v1/chat/completions", None),
    ("http://Phi_Model/v1", None),
    ("http://phi:notaport/v1", None),
    ("", None),
    (None, None),
])
def test_a_url_names_a_workspace_only_by_its_service_in_the_same_namespace(url, expected):
    assert find_workspace_target(url, "team") == expected


async def test_cluster_dns_is_the_service_name():
    assert await ClusterDNS().service_url(None, "team", "phi", 80) == "http://phi.team.svc.cluster.local"
    assert await ClusterDNS().service_url(None, "team", "phi", 8080) == "http://phi.team.svc.cluster.local:8080"


def _conds(st: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in st["conditions"]}


READY = WorkloadFacts(exists=True, current=True, replicas=1, ready_replicas=1, rolled_out=True)


def test_status_table():
    ok = status.compute_status(None, status.StatusFacts(generation=1, service=READY), NOW)
    assert _conds(ok) == {"ResourceReady": ("True", "ragengineResourceStatusSuccess"),
                          "ServiceReady": ("True", "RAGEngineServiceSuccess"),
                          "RAGEngineSucceeded": ("True", "ragengineSucceeded")}
    assert not status.status_changed(ok, status.compute_status(ok, status.StatusFacts(generation=1, service=READY),
                                                               datetime(2026, 2, 1, tzinfo=UTC)))
    waiting = status.compute_status(ok, status.StatusFacts(
        generation=1, service=READY, target=status.TargetFacts(workspace="phi", state="not-ready", detail="x")), NOW)
    assert _conds(waiting)["RAGEngineSucceeded"] == ("False", "ragenginePending")
    assert _conds(waiting)["InferenceServiceReady"] == ("False", "WorkspaceNotReady")
    stalled = WorkloadFacts(exists=True, current=True, replicas=1, rolled_out=True,
                            stalled=("ImageNeedsCluster", "image x needs a cluster"))
    failed = status.compute_status(ok, status.StatusFacts(generation=1, service=stalled), NOW)
    assert _conds(failed)["ServiceReady"] == ("False", "ImageNeedsCluster")  # on ServiceReady, not another type
    assert _conds(failed)["RAGEngineSucceeded"] == ("False", "ragengineFailed")
    node = ResourceFacts(needed=1, selected=(), provisioning=True, claim_failures=("NodeClaim c: no capacity",))
    no_node = status.compute_status(None, status.StatusFacts(generation=1, resource=node), NOW)
    assert _conds(no_node)["ResourceReady"] == ("False", "ragengineResourceStatusFailed")
    assert _conds(no_node)["NodeClaimReady"] == ("False", "checkNodeClaimStatusFailed")
    gone = status.compute_status(ok, status.StatusFacts(generation=1, deleting=True), NOW)
    assert _conds(gone)["RAGEngineDeleting"] == ("True", "ragengineDeleted")


def test_target_facts_from_the_workspace_status():
    ready = {"status": {"conditions": [{"type": "WorkspaceSucceeded", "status": "True"}]}}
    assert status.compute_target_facts("phi", ready).state == "ready"
    loading = {"status": {"conditions": [{"type": "InferenceReady", "status": "False",
                                          "reason": "WorkspaceInferenceStatusPending", "message": "rolling out"}]}}
    facts = status.compute_target_facts("phi", loading)
    assert facts.state == "not-ready" and "rolling out" in facts.detail
    assert status.compute_target_facts("phi", {"tuning": {}}).state == "not-serving"
