"""Inference Workspaces against the local store, with the fake kubelet playing the cluster."""

from __future__ import annotations

from kaito.api import labels
from kaito.cluster import errors, protocol
from kaito.controller.observe import WorkspaceKey
from tests.integration.controller.harness import conditions, converge, make_workspace

KEY = WorkspaceKey("default", "ws")


async def test_workspace_reaches_succeeded(cluster, kubelet, make_reconciler):
    rec = make_reconciler()
    await cluster.inner.apply(make_workspace(), field_manager="kubectl")

    await rec.reconcile(KEY)  # nothing exists: a NodeClaim is created, status says so
    ws = await cluster.get(protocol.WORKSPACE, "ws")
    assert conditions(ws)["NodeClaimReady"] == ("Unknown", "CreateNodeClaimPending")
    assert conditions(ws)["ResourceReady"][0] == "False"
    assert labels.FINALIZER_WORKSPACE in ws["metadata"]["finalizers"]
    assert ws["metadata"]["annotations"][labels.ANNOTATION_REVISION] == "1"
    claims = (await cluster.list(protocol.NODECLAIM)).items
    assert len(claims) == 1
    assert claims[0]["metadata"]["labels"][labels.LABEL_WORKSPACE_NAME] == "ws"

    await kubelet.provision()
    await rec.reconcile(KEY)  # node ready: Service and Deployment appear
    ws = await cluster.get(protocol.WORKSPACE, "ws")
    assert conditions(ws)["ResourceReady"] == ("True", "workspaceResourceStatusSuccess")
    assert conditions(ws)["InferenceReady"][0] == "False"
    dep = await cluster.get(protocol.DEPLOYMENT, "ws", "default")
    assert dep["metadata"]["annotations"][labels.ANNOTATION_REVISION] == "1"
    svc = await cluster.get(protocol.SERVICE, "ws", "default")
    assert [p["port"] for p in svc["spec"]["ports"]] == [80, 29500]
    assert ws["status"]["workerNodes"] == [claims[0]["metadata"]["name"].replace("ws", "node-ws", 1)]

    await kubelet.run_workloads()
    await rec.reconcile(KEY)
    ws = await cluster.get(protocol.WORKSPACE, "ws")
    assert conditions(ws) == {
        "NodeClaimReady": ("True", "installNodePluginsSuccess"),
        "ResourceReady": ("True", "workspaceResourceStatusSuccess"),
        "InferenceReady": ("True", "WorkspaceInferenceStatusSuccess"),
        "WorkspaceSucceeded": ("True", "workspaceSucceeded"),
    }
    assert all(c["observedGeneration"] == ws["metadata"]["generation"] for c in ws["status"]["conditions"])
    events = (await cluster.list(protocol.EVENT, "default")).items
    assert {"NodeClaimCreated", "WorkloadApplied", "RevisionCreated"} <= {e["reason"] for e in events}

    cluster.reset()
    assert await rec.reconcile(KEY) is None
    assert cluster.total == 0, cluster.writes  # steady state: zero writes


async def test_multi_node_preset_gets_statefulset_and_headless_service(cluster, kubelet, make_reconciler):
    ws = make_workspace(
        resource={
            "instanceType": "Standard_NC12s_v3",
            "count": 2,
            "labelSelector": {"matchLabels": {"apps": "ws"}},
        },
        inference={
            "preset": {
                "name": "llama-2-13b-chat",
                "accessMode": "private",
                "presetOptions": {
                    "image": "myregistry.io/llama-2-13b-chat:0.0.3",
                    "imagePullSecrets": ["pull"],
                },
            }
        },
    )
    await cluster.inner.apply(ws, field_manager="kubectl")
    rec = make_reconciler()
    await converge(rec, kubelet, [KEY])
    assert len((await cluster.list(protocol.NODECLAIM)).items) == 2
    sts = await cluster.get(protocol.STATEFULSET, "ws", "default")
    assert sts["spec"]["replicas"] == 2
    await cluster.get(protocol.SERVICE, "ws-headless", "default")
    with_image = sts["spec"]["template"]["spec"]["containers"][0]["image"]
    assert with_image == "myregistry.io/llama-2-13b-chat:0.0.3"
    assert conditions(await cluster.get(protocol.WORKSPACE, "ws"))["WorkspaceSucceeded"][0] == "True"


async def test_preferred_nodes_are_used_without_nodeclaims(cluster, kubelet, make_reconciler):
    await kubelet.add_node(
        "gpu-1", {"apps": "ws"}, instance_type="Standard_NC6"
    )  # another SKU, but preferred
    ws = make_workspace(
        resource={
            "instanceType": "Standard_NC24ads_A100_v4",
            "labelSelector": {"matchLabels": {"apps": "ws"}},
            "preferredNodes": ["gpu-1"],
        }
    )
    await cluster.inner.apply(ws, field_manager="kubectl")
    await converge(make_reconciler(), kubelet, [KEY])
    assert (await cluster.list(protocol.NODECLAIM)).items == []
    ws = await cluster.get(protocol.WORKSPACE, "ws")
    assert ws["status"]["workerNodes"] == ["gpu-1"]
    assert conditions(ws)["WorkspaceSucceeded"][0] == "True"


async def test_nodeclaims_only_for_the_shortfall(cluster, kubelet, make_reconciler):
    await kubelet.add_node("gpu-1", {"apps": "ws"}, instance_type="Standard_NC24ads_A100_v4")
    ws = make_workspace(
        resource={
            "instanceType": "Standard_NC24ads_A100_v4",
            "count": 3,
            "labelSelector": {"matchLabels": {"apps": "ws"}},
        }
    )
    await cluster.inner.apply(ws, field_manager="kubectl")
    await converge(make_reconciler(), kubelet, [KEY])
    assert len((await cluster.list(protocol.NODECLAIM)).items) == 2
    ws = await cluster.get(protocol.WORKSPACE, "ws")
    assert "gpu-1" in ws["status"]["workerNodes"] and len(ws["status"]["workerNodes"]) == 3
    assert conditions(ws)["WorkspaceSucceeded"][0] == "True"


async def test_byo_nodes_chosen_by_labels_and_gpu_labels(cluster, kubelet, make_reconciler):
    await kubelet.add_node("plain", {"apps": "ws"}, gpu=None)
    await kubelet.add_node("gpu", {"apps": "ws"})
    ws = make_workspace(
        resource={
            "labelSelector": {"matchLabels": {"apps": "ws"}},
            "instanceType": "Standard_NC24ads_A100_v4",
        }
    )
    await cluster.inner.apply(ws, field_manager="kubectl")
    rec = make_reconciler(provisioner="byo")
    await converge(rec, kubelet, [KEY])
    ws = await cluster.get(protocol.WORKSPACE, "ws")
    assert ws["status"]["workerNodes"] == ["gpu"]
    assert "NodeClaimReady" not in conditions(ws)
    assert conditions(ws)["WorkspaceSucceeded"][0] == "True"
    assert (await cluster.list(protocol.NODECLAIM)).items == []


async def test_byo_without_nodes_waits_with_a_requeue(cluster, kubelet, make_reconciler):
    await cluster.inner.apply(make_workspace(), field_manager="kubectl")
    rec = make_reconciler(provisioner="byo")
    assert await rec.reconcile(KEY) == 0.05
    ws = await cluster.get(protocol.WORKSPACE, "ws")
    assert conditions(ws)["ResourceReady"][0] == "False"
    assert conditions(ws)["WorkspaceSucceeded"] == ("False", "workspacePending")


async def test_spec_change_bumps_revision_and_rolls_the_workload(cluster, kubelet, make_reconciler):
    await cluster.inner.apply(make_workspace(), field_manager="kubectl")
    rec = make_reconciler()
    await converge(rec, kubelet, [KEY])
    before = await cluster.get(protocol.DEPLOYMENT, "ws", "default")
    changed = make_workspace(
        inference={
            "preset": {"name": "falcon-7b"},
            "adapters": [{"source": {"name": "adapter-a", "image": "reg.io/adapter-a:1"}, "strength": "0.5"}],
        }
    )
    await cluster.inner.apply(changed, field_manager="kubectl")
    await converge(rec, kubelet, [KEY])
    after = await cluster.get(protocol.DEPLOYMENT, "ws", "default")
    assert after["metadata"]["annotations"][labels.ANNOTATION_REVISION] == "2"
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert [c["name"] for c in after["spec"]["template"]["spec"].get("initContainers", [])] != []
    revs = (await cluster.list(protocol.CONTROLLER_REVISION, "default")).items
    assert sorted(r["revision"] for r in revs) == [1, 2]
    ws = await cluster.get(protocol.WORKSPACE, "ws")
    assert ws["metadata"]["annotations"][labels.ANNOTATION_REVISION] == "2"
    assert conditions(ws)["WorkspaceSucceeded"][0] == "True"
    assert len((await cluster.list(protocol.NODECLAIM)).items) == 1  # no new node for a new revision


async def test_hand_edit_survives_and_deleted_workload_is_recreated(cluster, kubelet, make_reconciler):
    await cluster.inner.apply(make_workspace(), field_manager="kubectl")
    rec = make_reconciler()
    await converge(rec, kubelet, [KEY])
    dep = await cluster.get(protocol.DEPLOYMENT, "ws", "default")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    edited_args = [*container.get("args", []), "--load_in_4bit"]
    edit = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ws", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{**container, "args": edited_args}]}}},
    }
    await cluster.inner.apply(edit, field_manager="kubectl-edit", force=True)
    for _ in range(3):
        await rec.reconcile(KEY)
    kept = await cluster.get(protocol.DEPLOYMENT, "ws", "default")
    assert kept["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "--load_in_4bit"

    await cluster.inner.delete(protocol.DEPLOYMENT, "ws", "default")
    await rec.reconcile(KEY)
    again = await cluster.get(protocol.DEPLOYMENT, "ws", "default")
    assert "--load_in_4bit" not in again["spec"]["template"]["spec"]["containers"][0].get("args", [])
    assert again["spec"]["template"]["spec"]["containers"][0] == container


async def test_template_workspace_gets_deployment_without_service(cluster, kubelet, make_reconciler):
    template = {
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}
    }
    await cluster.inner.apply(make_workspace(inference={"template": template}), field_manager="kubectl")
    await converge(make_reconciler(), kubelet, [KEY])
    dep = await cluster.get(protocol.DEPLOYMENT, "ws", "default")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert (await cluster.list(protocol.SERVICE, "default")).items == []
    assert conditions(await cluster.get(protocol.WORKSPACE, "ws"))["WorkspaceSucceeded"][0] == "True"


async def test_unknown_preset_and_small_sku_are_conditions_not_retries(cluster, kubelet, make_reconciler):
    rec = make_reconciler()
    await cluster.inner.apply(
        make_workspace("bad", inference={"preset": {"name": "no-such-model"}}), field_manager="kubectl"
    )
    await cluster.inner.apply(
        make_workspace(
            "small",
            resource={"instanceType": "Standard_NC6s_v3", "labelSelector": {"matchLabels": {"a": "b"}}},
            inference={"preset": {"name": "falcon-40b"}},
        ),
        field_manager="kubectl",
    )
    for name, ctype in (("bad", "InferenceReady"), ("small", "ResourceReady")):
        assert await rec.reconcile(WorkspaceKey("default", name)) is None  # no retry loop
        ws = await cluster.get(protocol.WORKSPACE, name)
        assert conditions(ws)[ctype] == ("False", "workspaceValidationFailed")
        assert conditions(ws)["WorkspaceSucceeded"] == ("False", "workspaceFailed")
        cluster.reset()
        await rec.reconcile(WorkspaceKey("default", name))
        assert cluster.total == 0
    assert (await cluster.list(protocol.NODECLAIM)).items == []


async def test_deletion_removes_nodeclaims_then_releases(cluster, kubelet, make_reconciler):
    await cluster.inner.apply(
        make_workspace(
            resource={
                "instanceType": "Standard_NC24ads_A100_v4",
                "count": 2,
                "labelSelector": {"matchLabels": {"apps": "ws"}},
            }
        ),
        field_manager="kubectl",
    )
    rec = make_reconciler()
    await converge(rec, kubelet, [KEY])
    assert len((await cluster.list(protocol.NODECLAIM)).items) == 2
    await cluster.inner.delete(protocol.WORKSPACE, "ws", "default")
    await rec.reconcile(KEY)
    ws = await cluster.get(protocol.WORKSPACE, "ws")
    assert conditions(ws)["WorkspaceDeleting"] == ("True", "workspaceDeleted")
    assert (await cluster.list(protocol.NODECLAIM)).items == []
    await rec.reconcile(KEY)  # NodeClaims gone: the finalizer is released and the Workspace goes
    try:
        await cluster.get(protocol.WORKSPACE, "ws")
        raise AssertionError("Workspace still present")
    except errors.NotFound:
        pass
    for kind in (protocol.DEPLOYMENT, protocol.SERVICE, protocol.CONTROLLER_REVISION):
        assert (await cluster.list(kind, "default")).items == []
    await kubelet.provision()
    assert [
        n for n in (await cluster.list(protocol.NODE)).items if n["metadata"]["name"].startswith("node-ws")
    ] == []
