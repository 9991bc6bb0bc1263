"""RAGEngines through their reconciler, on the local store and over HTTP against the API emulator,
with the fake kubelet playing the cluster (kaito-v0.12.md §4.2)."""

from __future__ import annotations

import copy
from typing import Any

from kaito.api import ragengine
from kaito.cluster import errors, protocol
from kaito.controller.manager import Manager
from kaito.controller.observe import WorkspaceKey
from kaito.controller.ragengine.observe import RAGEngineKey
from kaito.controller.ragengine.reconciler import RAGEngineReconciler
from kaito.controller.reconciler import Reconciler
from kaito.controller.settings import Settings
from tests.integration.controller.harness import conditions, converge, make_workspace
from tests.integration.controller.test_manager import kubelet_running, wait_for

KEY = RAGEngineKey("default", "rag")
SETTINGS = Settings(pending_requeue_s=0.05)
GPU_SKU = "Standard_NC24ads_A100_v4"


def make_ragengine(name: str = "rag", *, url: str | None = "http://llm.example.com/v1/chat/completions",
                   **spec: Any) -> dict:
    body: dict[str, Any] = {"embedding": {"local": {"modelID": "BAAI/bge-small-en-v1.5"}}}
    if url is not None:
        body["inferenceService"] = {"url": url, "contextWindowSize": 4096}
    body.update(copy.deepcopy(spec))
    return {"apiVersion": "kaito.sh/v1beta1", "kind": "RAGEngine",
            "metadata": {"name": name, "namespace": "default"}, "spec": body}


def env_of(deployment: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


class FakeEndpoints:
    """The local cluster's way of reaching a Service, made settable: None until a test says where."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.asked: list[tuple[str, str, int]] = []

    async def service_url(self, cluster, namespace, name, port):
        self.asked.append((namespace, name, port))
        return self.url


async def test_ragengine_reaches_succeeded_and_then_costs_no_writes(cluster, kubelet):
    rec = RAGEngineReconciler(cluster, SETTINGS)
    await cluster.inner.apply(make_ragengine(), field_manager="kubectl")
    await rec.reconcile(KEY)
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    assert ragengine.FINALIZER in rag["metadata"]["finalizers"]
    assert rag["metadata"]["annotations"][ragengine.ANNOTATION_REVISION] == "1"
    assert conditions(rag)["ResourceReady"] == ("True", "ragengineResourceStatusSuccess")
    assert conditions(rag)["ServiceReady"] == ("False", "RAGEngineServiceStatusPending")
    svc = await cluster.get(protocol.SERVICE, "rag", "default")
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["selector"] == {"kaito.sh/ragengine": "rag"}
    dep = await cluster.get(protocol.DEPLOYMENT, "rag", "default")
    env = env_of(dep)
    assert env["LLM_INFERENCE_URL"] == "http://llm.example.com/v1/chat/completions"  # a plain URL, as written
    assert env["MODEL_ID"] == "BAAI/bge-small-en-v1.5" and env["EMBEDDING_TYPE"] == "local"
    assert dep["metadata"]["annotations"][ragengine.ANNOTATION_REVISION] == "1"
    revisions = (await cluster.list(protocol.CONTROLLER_REVISION, "default")).items
    assert [r["metadata"]["labels"][ragengine.LABEL_REVISION_NAME] for r in revisions] == ["rag"]
    assert not (await cluster.list(protocol.NODECLAIM)).items  # no compute: no node of its own

    await kubelet.run_workloads()
    await rec.reconcile(KEY)
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    assert conditions(rag) == {
        "ResourceReady": ("True", "ragengineResourceStatusSuccess"),
        "ServiceReady": ("True", "RAGEngineServiceSuccess"),
        "RAGEngineSucceeded": ("True", "ragengineSucceeded"),
    }
    assert "RAGEngineServiceReady" not in conditions(rag)  # one type for the service, whatever its state
    events = {e["reason"] for e in (await cluster.list(protocol.EVENT, "default")).items}
    assert {"RevisionCreated", "WorkloadApplied"} <= events
    cluster.reset()
    assert await rec.reconcile(KEY) is None
    assert cluster.total == 0, cluster.writes


async def test_a_new_spec_is_a_new_revision_and_rolls_the_deployment(cluster, kubelet):
    rec = RAGEngineReconciler(cluster, SETTINGS)
    await cluster.inner.apply(make_ragengine(), field_manager="kubectl")
    await converge(rec, kubelet, [KEY])
    changed = make_ragengine()
    changed["spec"]["inferenceService"]["contextWindowSize"] = 8192
    await cluster.inner.apply(changed, field_manager="kubectl")
    await converge(rec, kubelet, [KEY])
    dep = await cluster.get(protocol.DEPLOYMENT, "rag", "default")
    assert dep["metadata"]["annotations"][ragengine.ANNOTATION_REVISION] == "2"
    assert env_of(dep)["LLM_CONTEXT_WINDOW"] == "8192"
    revisions = (await cluster.list(protocol.CONTROLLER_REVISION, "default")).items
    assert sorted(r["revision"] for r in revisions) == [1, 2]
    # A hand edit of the current Deployment survives (KAITO's rule): only a new revision re-applies it.
    edited = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "rag", "namespace": "default",
              "annotations": {"team": "search"}}}
    await cluster.inner.apply(edited, field_manager="kubectl-edit")
    cluster.reset()
    await rec.reconcile(KEY)
    assert "apply:Deployment" not in cluster.writes


async def test_a_workspace_named_by_the_url_is_its_service_and_its_readiness_a_condition(cluster, kubelet):
    workspaces = Reconciler(cluster, SETTINGS)
    rec = RAGEngineReconciler(cluster, SETTINGS)
    await cluster.inner.apply(make_workspace("phi"), field_manager="kubectl")
    await cluster.inner.apply(make_ragengine(url="http://phi/v1/chat/completions"), field_manager="kubectl")
    await rec.reconcile(KEY)
    await kubelet.run_workloads()
    await rec.reconcile(KEY)
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    assert conditions(rag)["InferenceServiceReady"] == ("False", "WorkspaceNotReady")
    assert conditions(rag)["RAGEngineSucceeded"] == ("False", "ragenginePending")
    message = next(c["message"] for c in rag["status"]["conditions"] if c["type"] == "RAGEngineSucceeded")
    assert "Workspace phi" in message and "not ready" in message
    dep = await cluster.get(protocol.DEPLOYMENT, "rag", "default")
    # In a cluster the Workspace's Service is known at once: the service runs and retrieves meanwhile.
    assert env_of(dep)["LLM_INFERENCE_URL"] == "http://phi.default.svc.cluster.local/v1/chat/completions"

    await converge(workspaces, kubelet, [WorkspaceKey("default", "phi")])
    await rec.reconcile(KEY)
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    assert conditions(rag)["InferenceServiceReady"] == ("True", "WorkspaceReady")
    assert conditions(rag)["RAGEngineSucceeded"] == ("True", "ragengineSucceeded")


async def test_on_the_local_cluster_the_deployment_waits_for_the_workspace_address(cluster, kubelet):
    endpoints = FakeEndpoints()
    rec = RAGEngineReconciler(cluster, SETTINGS, endpoints=endpoints)
    await cluster.inner.apply(make_workspace("phi"), field_manager="kubectl")
    await cluster.inner.apply(make_ragengine(url="http://phi"), field_manager="kubectl")
    assert await rec.reconcile(KEY) == SETTINGS.pending_requeue_s  # held: look again soon
    assert endpoints.asked == [("default", "phi", 80)]
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    assert conditions(rag)["ServiceReady"] == ("False", "RAGEngineServiceStatusPending")
    assert any("waiting for Workspace phi to serve" in c["message"] for c in rag["status"]["conditions"])
    assert not (await cluster.list(protocol.DEPLOYMENT, "default", {"kaito.sh/ragengine": "rag"})).items
    assert (await cluster.get(protocol.SERVICE, "rag", "default"))["metadata"]["name"] == "rag"

    endpoints.url = "http://127.0.0.1:41000"
    await rec.reconcile(KEY)
    dep = await cluster.get(protocol.DEPLOYMENT, "rag", "default")
    assert env_of(dep)["LLM_INFERENCE_URL"] == "http://127.0.0.1:41000/v1/chat/completions"  # the chat API by default

    endpoints.url = None  # the Workspace's pod went away: the engine keeps the address it has
    cluster.reset()
    await rec.reconcile(KEY)
    assert "apply:Deployment" not in cluster.writes
    endpoints.url = "http://127.0.0.1:42000"  # back on another port: the Deployment follows, same revision
    await rec.reconcile(KEY)
    dep = await cluster.get(protocol.DEPLOYMENT, "rag", "default")
    assert env_of(dep)["LLM_INFERENCE_URL"] == "http://127.0.0.1:42000/v1/chat/completions"
    assert dep["metadata"]["annotations"][ragengine.ANNOTATION_REVISION] == "1"


async def test_a_gpu_compute_gets_one_nodeclaim_which_goes_on_delete(cluster, kubelet):
    rec = RAGEngineReconciler(cluster, SETTINGS)
    spec = {"compute": {"instanceType": GPU_SKU, "labelSelector": {"matchLabels": {"apps": "rag"}}}}
    await cluster.inner.apply(make_ragengine(**spec), field_manager="kubectl")
    await rec.reconcile(KEY)
    await rec.reconcile(KEY)  # a restart before the node comes: still one claim (deterministic name)
    claims = (await cluster.list(protocol.NODECLAIM)).items
    assert len(claims) == 1 and claims[0]["metadata"]["labels"]["kaito.sh/ragengine"] == "rag"
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    assert conditions(rag)["NodeClaimReady"] == ("Unknown", "CreateNodeClaimPending")
    assert conditions(rag)["ResourceReady"] == ("False", "ragengineResourceStatusPending")
    assert not (await cluster.list(protocol.DEPLOYMENT, "default", {"kaito.sh/ragengine": "rag"})).items

    await converge(rec, kubelet, [KEY])
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    assert conditions(rag)["NodeClaimReady"] == ("True", "installNodePluginsSuccess")
    assert conditions(rag)["RAGEngineSucceeded"] == ("True", "ragengineSucceeded")
    assert rag["status"]["workerNodes"] == [f"node-{claims[0]['metadata']['name']}"]
    dep = await cluster.get(protocol.DEPLOYMENT, "rag", "default")
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}

    await cluster.inner.delete(protocol.RAGENGINE, "rag", "default")
    await rec.reconcile(KEY)
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    assert conditions(rag)["RAGEngineDeleting"] == ("True", "ragengineDeleted")
    await converge(rec, kubelet, [KEY])
    assert not (await cluster.list(protocol.RAGENGINE)).items
    assert not (await cluster.list(protocol.NODECLAIM)).items
    assert not (await cluster.list(protocol.DEPLOYMENT, "default")).items  # owned: garbage-collected


async def test_a_spec_written_past_the_webhook_is_a_condition_not_a_crash(cluster, kubelet):
    rec = RAGEngineReconciler(cluster, SETTINGS)
    bad = make_ragengine(storage={"vectorDB": {"engine": "milvus", "url": "http://milvus:19530"}})
    await cluster.inner.apply(bad, field_manager="kubectl")
    assert await rec.reconcile(KEY) is None
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    status, reason = conditions(rag)["RAGEngineSucceeded"]
    assert (status, reason) == ("False", "ragengineValidationFailed")
    message = rag["status"]["conditions"][0]["message"]
    assert "spec.storage.vectorDB.engine" in message and "milvus" in message
    assert not (await cluster.list(protocol.DEPLOYMENT, "default")).items
    warnings = [e for e in (await cluster.list(protocol.EVENT, "default")).items if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["ragengineValidationFailed"]
    cluster.reset()
    await rec.reconcile(KEY)
    assert cluster.total == 0  # the condition is written once; no retry loop


async def test_a_tuning_workspace_is_no_inference_service(cluster, kubelet):
    rec = RAGEngineReconciler(cluster, SETTINGS)
    tuning = make_workspace("trainer", inference=None, tuning={
        "preset": {"name": "falcon-7b"}, "method": "lora",
        "input": {"urls": ["https://example.com/data.jsonl"]},
        "output": {"image": "registry.example.com/adapter:1", "imagePushSecret": "push"}})
    await cluster.inner.apply(tuning, field_manager="kubectl")
    await cluster.inner.apply(make_ragengine(url="http://trainer.default.svc.cluster.local/v1/chat/completions"),
                              field_manager="kubectl")
    await rec.reconcile(KEY)
    rag = await cluster.get(protocol.RAGENGINE, "rag", "default")
    assert conditions(rag)["InferenceServiceReady"] == ("False", "WorkspaceNotServing")
    assert conditions(rag)["RAGEngineSucceeded"] == ("False", "ragengineFailed")


async def test_the_manager_replans_an_engine_when_the_workspace_it_names_turns_ready(cluster, kubelet):
    """Watches: the Workspace's events reach the engine naming it (no resync, no requeue needed)."""
    manager = Manager(cluster.inner, Settings(pending_requeue_s=30.0, workers=3), resync_period=None)
    async with manager, kubelet_running(kubelet, 0.05):
        await cluster.inner.apply(make_ragengine(url="http://phi.default/v1/chat/completions"),
                                  field_manager="kubectl")
        await wait_for(lambda: _condition(cluster, "ServiceReady", "True"))
        await cluster.inner.apply(make_workspace("phi"), field_manager="kubectl")
        # Named but not there yet, the URL was used as written; now it is the Workspace, followed until Ready.
        await wait_for(lambda: _condition(cluster, "InferenceServiceReady", "True"), timeout=30)
        rag = await cluster.inner.get(protocol.RAGENGINE, "rag", "default")
        assert conditions(rag)["RAGEngineSucceeded"] == ("True", "ragengineSucceeded")
        await cluster.inner.delete(protocol.RAGENGINE, "rag", "default")
        await wait_for(lambda: _gone(cluster))
    assert not [f for f in manager.errors if f.controller == "ragengine"]


async def _condition(cluster, type_: str, status: str) -> bool:
    try:
        rag = await cluster.inner.get(protocol.RAGENGINE, "rag", "default")
    except errors.NotFound:
        return False
    return conditions(rag).get(type_, ("",))[0] == status


async def _gone(cluster) -> bool:
    return not (await cluster.inner.list(protocol.RAGENGINE)).items
