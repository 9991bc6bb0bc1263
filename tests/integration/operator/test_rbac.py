"""The chart's RBAC covers every API call the operator makes, and grants nothing it does not use.

The controller (inference and tuning Workspaces from creation to deletion, with NodeClaims),
leader election and the webhook (self-managed certificate, caBundle, tuning ConfigMaps) all run
through a recording `Cluster`; each protocol call is translated into the API requests the kube
backend sends for it, and compared with the ClusterRole and Role the chart renders.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from kaito.api import crd_kinds
from kaito.api.crd import build_crd
from kaito.cluster import errors, protocol
from kaito.cluster.local import LocalCluster
from kaito.controller.settings import Settings
from kaito.operator.leader_election import LeaderElector, LeaseConfig
from kaito.operator.metrics import OperatorMetrics
from kaito.operator.process import OperatorManager
from kaito.webhook import admission, server, tls
from tests.integration.controller.harness import conditions, make_workspace
from tests.support.kubelet import FakeKubelet
from tests.unit.api.fake_facts import FakeFacts
from tests.unit.chart.render import NAMESPACE, by_kind, render

# Granted on purpose though no protocol call uses it: the API server demands it of whoever sets
# `blockOwnerDeletion` on owner references to a Workspace (OwnerReferencesPermissionEnforcement).
GRANTED_WITHOUT_CALL = {("kaito.sh", "workspaces/finalizers", "update")}
# Used by controller paths this walk does not take (each named in controller/plan.py): the
# multi-node StatefulSet, deleting a workload whose kind changed, pruning old revisions.
USED_ELSEWHERE = {
    ("apps", "statefulsets", "create"), ("apps", "statefulsets", "patch"), ("apps", "statefulsets", "delete"),
    ("apps", "deployments", "delete"), ("apps", "controllerrevisions", "delete"),
}
# Granted for the InferenceSet and RAGEngine reconcilers (issues 14/15 item 2, a later phase): the
# walk adds them, and this set goes, when those controllers run in it.
FOR_LATER_CONTROLLERS = {
    ("kaito.sh", res, verb)
    for kind in ("inferencesets", "ragengines")
    for res, verb in ((kind, "get"), (kind, "list"), (kind, "watch"), (kind, "patch"),
                      (f"{kind}/status", "patch"), (f"{kind}/finalizers", "update"))
}


class RecordingCluster:
    """Forwards to a Cluster and records (group, resource, verb, namespace) of each API request."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: set[tuple[str, str, str, str | None]] = set()

    def _add(self, kind: protocol.ResourceKind, verb: str, namespace: str | None, sub: str = "") -> None:
        ns = (namespace or protocol.DEFAULT_NAMESPACE) if kind.namespaced else None
        self.calls.add((kind.group, kind.plural + sub, verb, ns))

    async def get(self, kind, name, namespace=None):
        self._add(kind, "get", namespace)
        return await self.inner.get(kind, name, namespace)

    async def list(self, kind, namespace=None, labels=None):
        self._add(kind, "list", namespace if namespace else "*")
        return await self.inner.list(kind, namespace, labels)

    async def watch(self, kind, namespace=None, labels=None, resource_version=None):
        self._add(kind, "watch", namespace if namespace else "*")
        async for event in self.inner.watch(kind, namespace, labels, resource_version):
            yield event

    async def apply(self, obj, *, field_manager=protocol.FIELD_MANAGER, force=True):
        kind = protocol.kind_of(obj)
        ns = obj["metadata"].get("namespace")
        try:
            await self.inner.get(kind, obj["metadata"]["name"], ns)
        except errors.NotFound:
            self._add(kind, "create", ns)  # server-side apply that creates needs `create` too
        self._add(kind, "patch", ns)
        return await self.inner.apply(obj, field_manager=field_manager, force=force)

    async def apply_status(self, obj, *, field_manager=protocol.FIELD_MANAGER):
        self._add(protocol.kind_of(obj), "patch", obj["metadata"].get("namespace"), "/status")
        return await self.inner.apply_status(obj, field_manager=field_manager)

    async def delete(self, kind, name, namespace=None, **options):
        self._add(kind, "delete", namespace)
        return await self.inner.delete(kind, name, namespace, **options)

    async def emit_event(self, involved, type, reason, message):
        ns = (involved.get("metadata") or {}).get("namespace")
        for verb in ("get", "create", "patch"):  # KubeCluster reads the Event, then applies it
            self._add(protocol.EVENT, verb, ns)
        return await self.inner.emit_event(involved, type, reason, message)

    async def close(self):
        return await self.inner.close()


def granted(objects) -> tuple[set, set]:
    """What the operator's ServiceAccount is bound to (not the roles aggregated into users' roles)."""
    cluster_wide, namespaced = set(), set()
    bound = {b["roleRef"]["name"] for b in by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding")}
    for role in [r for r in by_kind(objects, "ClusterRole") + by_kind(objects, "Role") if r["metadata"]["name"] in bound]:
        target = cluster_wide if role["kind"] == "ClusterRole" else namespaced
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for res in rule["resources"]:
                    for verb in rule["verbs"]:
                        target.add((group, res, verb))
    return cluster_wide, namespaced


async def wait_for(predicate, timeout=20.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in time")


async def _step_then(kubelet, predicate):
    await kubelet.step()
    with contextlib.suppress(errors.NotFound):
        return await predicate()
    return False


async def exercise_everything(rec: RecordingCluster, inner) -> None:
    # Webhook: certificate Secret, caBundles (validating and mutating webhook configurations, CRD conversion),
    # tuning ConfigMaps in the release and Workspace namespaces.
    protocol.register_kind(tls.VALIDATING_WEBHOOK_CONFIGURATION)
    await inner.apply({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                       "metadata": {"name": "kaito"}, "webhooks": [{"name": "validation.workspace.kaito.sh"}]},
                      field_manager="helm")
    protocol.register_kind(tls.MUTATING_WEBHOOK_CONFIGURATION)
    await inner.apply({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
                       "metadata": {"name": "kaito"}, "webhooks": [{"name": "version.workspace.kaito.sh"}]},
                      field_manager="helm")
    protocol.register_kind(tls.CUSTOM_RESOURCE_DEFINITION)
    for crd in (build_crd(), *(build() for build in crd_kinds.BUILDERS.values())):
        await inner.apply(crd, field_manager="helm")
    cfg = tls.SelfManagedCerts(namespace=NAMESPACE, service="kaito-webhook", webhook_configuration="kaito")
    bundle = await tls.ensure_certificate(rec, cfg)
    await tls.ensure_ca_bundle(rec, "kaito", bundle.ca_cert)
    assert await tls.ensure_ca_bundle(rec, "kaito", bundle.ca_cert, kind=tls.MUTATING_WEBHOOK_CONFIGURATION)
    for name in cfg.conversion_crds:
        assert await tls.ensure_crd_conversion(rec, cfg, bundle.ca_cert, name)
    hook = admission.WorkspaceAdmission(FakeFacts(), server.make_configmap_reader(rec), NAMESPACE)
    tuning = make_workspace("tune", inference=None, tuning={
        "preset": {"name": "phi-3-mini-128k-instruct"}, "method": "lora",
        "input": {"urls": ["https://example.com/d.parquet"]},
        "output": {"image": "registry.example.com/a/b:1", "imagePushSecret": "push"}})
    for ws in (tuning, {**tuning, "tuning": {**tuning["tuning"], "config": "mine"}}):
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": "1", "operation": "CREATE", "namespace": "default", "object": ws}}
        await hook.review(json.dumps(body).encode())

    # Leader election around the whole controller run, as `kaito operator --leader-elect` does.
    elector = LeaderElector(rec, LeaseConfig(namespace=NAMESPACE, identity="rbac", retry_period=0.05,
                                             renew_deadline=1.0, lease_duration=2.0))
    done = asyncio.Event()

    async def lead():
        kubelet = FakeKubelet(inner)
        manager = OperatorManager(rec, Settings(pending_requeue_s=0.05, workers=2), OperatorMetrics(),
                                  resync_period=None)
        await manager.start()
        try:
            await inner.apply(make_workspace("ws"), field_manager="kubectl")
            await inner.apply(tuning, field_manager="kubectl")

            async def settled():
                await kubelet.step()
                await kubelet.start_jobs()
                await kubelet.finish_jobs(succeed=True)
                ws = await inner.get(protocol.WORKSPACE, "ws", "default")
                tune = await inner.get(protocol.WORKSPACE, "tune", "default")
                return all(conditions(w).get("WorkspaceSucceeded", ("",))[0] == "True" for w in (ws, tune))

            await wait_for(settled)
            # A new tuning revision replaces the Job (the old one is deleted first).
            changed = {**tuning, "tuning": {**tuning["tuning"], "input": {"urls": ["https://example.com/e.parquet"]}}}
            await inner.apply(changed, field_manager="kubectl")

            async def job_replaced():
                job = await inner.get(protocol.JOB, "tune", "default")
                return job["metadata"]["annotations"].get("workspace.kaito.io/revision") == "2"

            await wait_for(lambda: _step_then(kubelet, job_replaced))
            await inner.delete(protocol.WORKSPACE, "ws", "default")

            async def gone():
                await kubelet.step()
                with contextlib.suppress(errors.NotFound):
                    await inner.get(protocol.WORKSPACE, "ws", "default")
                    return False
                return True

            await wait_for(gone)
        finally:
            await manager.stop()
            done.set()

    run = asyncio.create_task(elector.run(lead))
    await asyncio.wait_for(done.wait(), timeout=60)
    elector.stop()
    await run
    assert await elector.release()


async def test_chart_rbac_covers_every_call_and_nothing_more(tmp_path):
    inner = LocalCluster(tmp_path / "store.db", poll_interval=0.02)
    rec = RecordingCluster(inner)
    try:
        await exercise_everything(rec, inner)
    finally:
        await inner.close()
    cluster_wide, namespaced = granted(render())
    missing = sorted(
        (g, r, v, ns) for g, r, v, ns in rec.calls
        if (g, r, v) not in cluster_wide and not (ns == NAMESPACE and (g, r, v) in namespaced)
    )
    assert missing == [], f"the chart's RBAC lacks: {missing}"
    used = {(g, r, v) for g, r, v, _ in rec.calls}
    unused = sorted((cluster_wide | namespaced) - used - GRANTED_WITHOUT_CALL - USED_ELSEWHERE - FOR_LATER_CONTROLLERS)
    assert unused == [], f"granted but never used (least privilege): {unused}"
    for key in ("NodeClaim", "Lease", "Secret"):  # the walk really went through every area
        assert any(r.startswith(key.lower()) for _, r, _, _ in rec.calls), key
