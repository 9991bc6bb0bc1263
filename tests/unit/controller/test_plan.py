"""Planning decisions that keep a steady state write-free and a hand edit alive (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from kaito.api import labels
from kaito.api.validation import UrlPolicy
from kaito.cluster import protocol
from kaito.controller import plan as plan_mod
from kaito.controller.observe import Observed, WorkspaceKey
from kaito.controller.settings import Settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def raw_ws(**meta):
    return {
        "apiVersion": "kaito.sh/v1alpha1",
        "kind": "Workspace",
        "metadata": {
            "name": "ws",
            "namespace": "default",
            "uid": "u1",
            "generation": 1,
            "resourceVersion": "5",
            **meta,
        },
        "resource": {
            "instanceType": "Standard_NC24ads_A100_v4",
            "labelSelector": {"matchLabels": {"apps": "ws"}},
        },
        "inference": {"preset": {"name": "falcon-7b"}},
    }


def test_is_subset_ignores_server_added_fields_but_not_changes():
    want = {"spec": {"ports": [{"port": 80}], "type": "ClusterIP"}}
    assert plan_mod.is_subset(
        want,
        {"spec": {"ports": [{"port": 80, "protocol": "TCP"}], "type": "ClusterIP", "clusterIP": "10.0.0.1"}},
    )
    assert not plan_mod.is_subset(want, {"spec": {"ports": [{"port": 81}], "type": "ClusterIP"}})
    assert not plan_mod.is_subset(want, {"spec": {"ports": [{"port": 80}, {"port": 1}], "type": "ClusterIP"}})


def test_first_plan_adds_finalizer_revision_and_a_nodeclaim():
    p = plan_mod.plan_workspace(Observed(key=WorkspaceKey("default", "ws"), workspace=raw_ws()), Settings(), NOW)
    assert p.workspace_patch["metadata"]["finalizers"] == [labels.FINALIZER_WORKSPACE]
    assert p.workspace_patch["metadata"]["annotations"][labels.ANNOTATION_REVISION] == "1"
    assert p.revision["kind"] == "ControllerRevision"
    assert [c["kind"] for c in p.nodeclaims] == ["NodeClaim"]
    assert p.apply == ()  # no workload before the node is ready
    assert p.status is not None and p.requeue_after == Settings().pending_requeue_s


def test_release_patch_keeps_annotations_and_drops_finalizer():
    raw = raw_ws(
        finalizers=[labels.FINALIZER_WORKSPACE],
        annotations={labels.ANNOTATION_REVISION: "3", labels.ANNOTATION_HASH: "h"},
    )
    patch = plan_mod.build_workspace_patch(raw, finalizer=False)
    assert patch["metadata"]["finalizers"] == []
    assert patch["metadata"]["annotations"] == {labels.ANNOTATION_REVISION: "3", labels.ANNOTATION_HASH: "h"}


def test_deleting_with_claims_deletes_them_and_keeps_the_finalizer():
    raw = raw_ws(finalizers=[labels.FINALIZER_WORKSPACE], deletionTimestamp="2026-01-01T00:00:00Z")
    claim = {"apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": {"name": "wsabc-0"}}
    p = plan_mod.plan_workspace(
        Observed(key=WorkspaceKey("default", "ws"), workspace=raw, nodeclaims=(claim,)), Settings(), NOW
    )
    assert [(d.kind, d.name) for d in p.delete] == [(protocol.NODECLAIM, "wsabc-0")]
    assert p.workspace_patch is None
    p = plan_mod.plan_workspace(Observed(key=WorkspaceKey("default", "ws"), workspace=raw), Settings(), NOW)
    assert p.workspace_patch["metadata"]["finalizers"] == []


def test_url_policy_comes_from_the_settings():
    """Strict by default (a real cluster); the local control plane's settings admit 127.0.0.1."""
    raw = raw_ws()
    del raw["inference"]
    raw["tuning"] = {
        "preset": {"name": "phi-3-mini-128k-instruct"},
        "method": "qlora",
        "input": {"urls": ["http://127.0.0.1:8000/train.jsonl"]},
        "output": {"volumeSource": {"hostPath": {"path": "/adapters/phi"}}},
    }
    key = WorkspaceKey("default", "ws")
    strict = plan_mod.plan_workspace(Observed(key=key, workspace=raw), Settings(), NOW)
    cond = {c["type"]: c for c in strict.status["conditions"]}["JobStarted"]
    assert cond["status"] == "False" and "tuning.input.urls[0]" in cond["message"] and "loopback" in cond["message"]
    assert strict.nodeclaims == ()
    local = plan_mod.plan_workspace(Observed(key=key, workspace=raw), Settings(url_policy=UrlPolicy.ALLOW_LOCAL), NOW)
    assert [c["kind"] for c in local.nodeclaims] == ["NodeClaim"]  # admitted: on to buying a node
    assert "JobStarted" not in {c["type"] for c in local.status["conditions"]}
