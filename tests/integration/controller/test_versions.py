"""The controller with either served version, on both backends.

A v1alpha1 Workspace and its v1beta1 conversion get the very same objects (namespace and uid aside),
the status is written in the storage version with v1beta1's `state` and `targetNodeCount`, and a
v1alpha1 object is judged by v1alpha1's rules because the backend recorded the version it was
written in.
"""

from __future__ import annotations

import copy

from kaito.api import conversion
from kaito.cluster import protocol
from kaito.controller.observe import WorkspaceKey
from tests.integration.controller.harness import conditions, converge, make_workspace


def _comparable(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    for key in ("namespace", "uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    meta.get("labels", {}).pop("kaito.sh/workspacenamespace", None)
    for ref in meta.get("ownerReferences", []):
        ref.pop("uid", None)
    template = out.get("spec", {}).get("template", {})
    template.get("metadata", {}).get("labels", {}).pop("kaito.sh/workspacenamespace", None)
    out.pop("status", None)
    return out


async def test_a_v1alpha1_workspace_and_its_v1beta1_conversion_get_the_same_objects(cluster, kubelet, make_reconciler):
    rec = make_reconciler()
    alpha = make_workspace("ws", "ns-alpha")
    beta = conversion.convert_object(make_workspace("ws", "ns-beta"), "kaito.sh/v1beta1")
    assert beta["apiVersion"] == "kaito.sh/v1beta1" and beta["resource"]["instanceType"]
    await cluster.inner.apply(alpha, field_manager="kubectl")
    await cluster.inner.apply(beta, field_manager="kubectl")
    keys = [WorkspaceKey("ns-alpha", "ws"), WorkspaceKey("ns-beta", "ws")]
    await converge(rec, kubelet, keys)
    for kind in (protocol.DEPLOYMENT, protocol.SERVICE):
        a = await cluster.get(kind, "ws", "ns-alpha")
        b = await cluster.get(kind, "ws", "ns-beta")
        assert _comparable(a) == _comparable(b), kind.kind
        assert a["metadata"]["ownerReferences"][0]["apiVersion"] == "kaito.sh/v1beta1"
    revisions = [(await cluster.list(protocol.CONTROLLER_REVISION, ns)).items for ns in ("ns-alpha", "ns-beta")]
    assert [r["metadata"]["annotations"] for r in revisions[0]] == [r["metadata"]["annotations"] for r in revisions[1]]
    for ns in ("ns-alpha", "ns-beta"):
        stored = await cluster.get(protocol.WORKSPACE, "ws", ns)
        assert stored["status"]["state"] == "Ready" and stored["status"]["targetNodeCount"] == 1
        assert conditions(stored)["WorkspaceSucceeded"][0] == "True"
    # The v1alpha1 client reads its Workspace back without v1beta1's status fields in the way.
    legacy = await cluster.get(protocol.WORKSPACE_V1ALPHA1, "ws", "ns-alpha")
    assert "state" not in legacy["status"] and "conversion.kaito.sh/hub-fields" in legacy["metadata"]["annotations"]


async def test_a_v1alpha1_workspace_keeps_v1alpha1_rules(cluster, kubelet, make_reconciler):
    # phi-2 is deprecated: v1alpha1 (KAITO v0.3.2) serves it, v1beta1 (KAITO v0.12) refuses it.
    rec = make_reconciler()
    alpha = make_workspace("old", inference={"preset": {"name": "phi-2"}})
    beta = conversion.convert_object(make_workspace("new", inference={"preset": {"name": "phi-2"}}), "kaito.sh/v1beta1")
    await cluster.inner.apply(alpha, field_manager="kubectl")
    await cluster.inner.apply(beta, field_manager="kubectl")
    await converge(rec, kubelet, [WorkspaceKey("default", "old"), WorkspaceKey("default", "new")])
    old = await cluster.get(protocol.WORKSPACE, "old")
    new = await cluster.get(protocol.WORKSPACE, "new")
    assert conditions(old)["WorkspaceSucceeded"] == ("True", "workspaceSucceeded")
    assert conditions(new)["InferenceReady"] == ("False", "workspaceValidationFailed")
    assert new["status"]["state"] == "Failed"
