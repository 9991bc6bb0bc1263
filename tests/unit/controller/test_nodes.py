"""Node selection (§3.1) and NodeClaim planning: order, qualification, deterministic names."""

from __future__ import annotations

from kaito.controller.nodes import NodeRequest, build_nodeclaim_name, plan_nodes

SKU = "Standard_NC12s_v3"


def node(name, *, ready=True, sku=SKU, labels=None, deleting=False, gpu_labels=False):
    lab = {"apps": "falcon", **(labels or {})}
    if sku:
        lab["node.kubernetes.io/instance-type"] = sku
    if gpu_labels:
        lab["nvidia.com/gpu.product"] = "NVIDIA-A100"
    meta = {"name": name, "labels": lab}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def claim(name, *, node_name=None, ready=False, launch_failed=None, deleting=False):
    conds = []
    if ready:
        conds.append({"type": "Ready", "status": "True"})
    if launch_failed:
        conds.append({"type": "Launched", "status": "False", "message": launch_failed})
    meta = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"nodeName": node_name, "conditions": conds}}


def request(count=1, **kw):
    return NodeRequest(
        namespace=kw.pop("namespace", "default"),
        name=kw.pop("name", "ws"),
        count=count,
        instance_type=kw.pop("instance_type", SKU),
        match_labels=kw.pop("match_labels", {"apps": "falcon"}),
        **kw,
    )


def test_order_preferred_then_previous_then_provisioned_then_name():
    nodes = [
        node("a"),
        node("b", labels={"karpenter.sh/nodepool": "kaito"}),
        node("c"),
        node("d"),
        node("z-pref", sku="Other_SKU"),  # preferred wins even with another instance type
    ]
    sel = plan_nodes(
        request(4, preferred=frozenset({"z-pref"}), previous=frozenset({"d"})), nodes, [], provision=True
    )
    assert sel.selected == ("z-pref", "d", "b", "a")
    assert sel.claims_to_create == ()


def test_only_ready_matching_nodes_of_the_instance_type_qualify():
    nodes = [
        node("notready", ready=False),
        node("deleting", deleting=True),
        node("otherlabel", labels={"apps": "other"}),
        node("othersku", sku="Standard_NC6"),
        node("good"),
    ]
    sel = plan_nodes(request(3), nodes, [], provision=True)
    assert sel.selected == ("good",)
    assert len(sel.claims_to_create) == 2


def test_shortfall_names_are_deterministic_and_skip_existing_claims():
    first = plan_nodes(request(3), [], [], provision=True)
    again = plan_nodes(request(3), [], [], provision=True)
    assert first.claims_to_create == again.claims_to_create
    assert len(set(first.claims_to_create)) == 3
    # After a crash that created slot 0 only, the restarted controller creates exactly the rest.
    existing = [claim(first.claims_to_create[0])]
    after = plan_nodes(request(3), [], existing, provision=True)
    assert after.claims_in_flight == (first.claims_to_create[0],)
    assert after.claims_to_create == first.claims_to_create[1:]


def test_names_differ_across_namespaces():
    assert build_nodeclaim_name("a", "ws", 0) != build_nodeclaim_name("b", "ws", 0)
    assert build_nodeclaim_name("a", "ws", 0).startswith("ws")


def test_claims_with_selected_nodes_count_and_failed_ones_are_not_replaced():
    name0 = build_nodeclaim_name("default", "ws", 0)
    name1 = build_nodeclaim_name("default", "ws", 1)
    claims = [claim(name0, node_name="n0", ready=True), claim(name1, launch_failed="no capacity")]
    sel = plan_nodes(request(2), [node("n0")], claims, provision=True)
    assert sel.selected == ("n0",)
    assert sel.claims_failed == ((name1, "no capacity"),)
    assert sel.claims_to_create == ()


def test_deleting_claim_keeps_its_name_taken():
    name0 = build_nodeclaim_name("default", "ws", 0)
    sel = plan_nodes(request(1), [], [claim(name0, deleting=True)], provision=True)
    assert sel.claims_to_create == (build_nodeclaim_name("default", "ws", 1),)


def test_byo_uses_gpu_labelled_nodes_and_never_plans_claims():
    nodes = [node("plain", sku=None), node("gpu", sku=None, gpu_labels=True)]
    sel = plan_nodes(request(2, instance_type=None), nodes, [], provision=False)
    assert sel.selected == ("gpu",)
    assert sel.claims_to_create == ()
