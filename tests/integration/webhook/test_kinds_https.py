"""InferenceSets and RAGEngines through the webhook over real HTTPS on 127.0.0.1: ConversionReview v1
in both directions without loss, and AdmissionReview on KAITO's paths with the same words as
`kaito validate` (the template judged as a Workspace, the vector DB engine, the thresholds)."""

from __future__ import annotations

import copy
import ssl
import uuid

import httpx
import pytest
import pytest_asyncio

from kaito.api import autoscaling, lossless
from kaito.webhook import certs, server, tls
from tests.integration.webhook.test_webhook_https import ConfigMapsOnly
from tests.unit.api.fake_facts import FakeFacts

pytestmark = pytest.mark.asyncio(loop_scope="module")

SET_BETA = {
    "apiVersion": "kaito.sh/v1beta1", "kind": "InferenceSet",
    "metadata": {"name": "phi", "namespace": "default", "uid": "u-9", "resourceVersion": "12", "generation": 3,
                 "creationTimestamp": "2025-02-03T04:05:06Z"},
    "spec": {"replicas": 3, "labelSelector": {"matchLabels": {"apps": "phi"}},
             "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
             "template": {"resource": {"partition": {"mode": "accelerator", "count": 2}},
                          "inference": {"preset": {"name": "test-validation", "accessMode": "public"}}}},
    "status": {"replicas": 3, "readyReplicas": 2, "selector": "inferenceset.kaito.sh/created-by=phi",
               "performance": {"metrics": {"aggregatedPeakTokensPerMinute": {
                   "description": "stress", "value": "1200", "config": {"concurrency": "64"}}}}},
}
RAG_ALPHA = {
    "apiVersion": "kaito.sh/v1alpha1", "kind": "RAGEngine",
    "metadata": {"name": "rag", "namespace": "default", "annotations": {"team": "docs"}},
    "spec": {"compute": {"count": 1, "instanceType": "Standard_NC6s_v3", "labelSelector": {"matchLabels": {"a": "b"}}},
             "storage": {"persistentVolumeClaim": "rag-data", "mountPath": "/data"},
             "embedding": {"local": {"modelID": "BAAI/bge-small-en-v1.5"}},
             "inferenceService": {"url": "http://phi/v1/chat/completions", "contextWindowSize": 4096},
             "queryServiceName": "rag-query", "indexServiceName": "rag-index"},
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def webhook(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("certs")
    bundle = certs.build_cert_bundle(["localhost"], ip_addresses=["127.0.0.1"])
    tls.write_cert_dir(bundle, tmp_path)
    cfg = server.WebhookConfig(host="127.0.0.1", port=0, cert_dir=tmp_path, release_namespace="kaito-system")
    srv = server.WebhookServer(ConfigMapsOnly(), FakeFacts(), cfg)
    await srv.start()
    ctx = ssl.create_default_context(cadata=bundle.ca_cert.decode())
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{srv.port}", verify=ctx) as client:
        yield client
    await srv.stop()


async def convert(webhook, desired, *objects):
    review = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
              "request": {"uid": "c-2", "desiredAPIVersion": desired, "objects": list(objects)}}
    resp = await webhook.post(server.CONVERT_PATH, json=review)
    assert resp.status_code == 200
    answer = resp.json()["response"]
    assert answer["uid"] == "c-2"
    return answer


async def test_inferenceset_v1beta1_to_v1alpha1_and_back(webhook):
    down = await convert(webhook, "kaito.sh/v1alpha1", copy.deepcopy(SET_BETA))
    assert down["result"] == {"status": "Success"}, down
    (alpha,) = down["convertedObjects"]
    assert alpha["apiVersion"] == "kaito.sh/v1alpha1" and "partition" not in alpha["spec"]["template"]["resource"]
    assert "config" not in alpha["status"]["performance"]["metrics"]["aggregatedPeakTokensPerMinute"]
    assert lossless.ANNOTATION in alpha["metadata"]["annotations"]
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp"):
        assert alpha["metadata"][key] == SET_BETA["metadata"][key]
    (beta,) = (await convert(webhook, "kaito.sh/v1beta1", alpha))["convertedObjects"]
    assert beta == SET_BETA


async def test_ragengine_v1alpha1_to_v1beta1_and_back_in_one_review_with_a_workspace(webhook):
    workspace = {"apiVersion": "kaito.sh/v1alpha1", "kind": "Workspace", "metadata": {"name": "ws"},
                 "resource": {"count": 1, "instanceType": "Standard_NC12s_v3", "labelSelector": {}},
                 "inference": {"preset": {"name": "test-validation", "accessMode": "public"}}}
    up = await convert(webhook, "kaito.sh/v1beta1", copy.deepcopy(RAG_ALPHA), workspace)
    rag, ws = up["convertedObjects"]
    assert rag["spec"]["storage"] == {"persistentVolume": {"persistentVolumeClaim": "rag-data", "mountPath": "/data"}}
    assert "queryServiceName" not in rag["spec"] and rag["metadata"]["annotations"]["team"] == "docs"
    assert ws["apiVersion"] == "kaito.sh/v1beta1" and ws["kind"] == "Workspace"
    down = await convert(webhook, "kaito.sh/v1alpha1", rag)
    assert down["convertedObjects"] == [RAG_ALPHA]


async def test_unconvertible_objects_of_the_new_kinds_fail_by_name(webhook):
    broken = copy.deepcopy(RAG_ALPHA)
    broken["spec"]["storage"]["size"] = "10Gi"
    answer = await convert(webhook, "kaito.sh/v1beta1", broken)
    assert answer["result"]["status"] == "Failure" and "spec.storage.size" in answer["result"]["message"]
    assert "rag" in answer["result"]["message"]
    answer = await convert(webhook, "kaito.sh/v2", copy.deepcopy(SET_BETA))
    assert answer["result"]["status"] == "Failure" and "unsupported version" in answer["result"]["message"]


def review(obj, kind, operation="CREATE", old=None):
    req = {"uid": str(uuid.uuid4()), "operation": operation, "namespace": "default", "object": obj,
           "kind": {"group": "kaito.sh", "version": obj["apiVersion"].split("/")[1], "kind": kind}}
    if old is not None:
        req["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


async def admitted(webhook, path, obj, kind, **kw):
    resp = await webhook.post(path, json=review(obj, kind, **kw))
    assert resp.status_code == 200
    return resp.json()["response"]


async def test_inferencesets_are_admitted_with_the_workspace_rules(webhook):
    good = copy.deepcopy(SET_BETA)
    del good["status"], good["spec"]["template"]["resource"]["partition"]
    good["spec"]["template"]["resource"]["instanceType"] = "Standard_NC12s_v3"
    answer = await admitted(webhook, server.VALIDATE_INFERENCESET_PATH, good, "InferenceSet")
    assert answer["allowed"] is True, answer
    bad = copy.deepcopy(good)
    bad["spec"]["template"]["inference"]["preset"]["name"] = "gpt-17"
    bad["metadata"]["annotations"] = {autoscaling.AUTO_PROVISION: "true", autoscaling.MAX_REPLICAS: "4",
                                      autoscaling.MIN_REPLICAS: "6", autoscaling.METRICS:
                                      "[{name: m, type: gauge, upthreshold: 1, downthreshold: 2}]"}
    answer = await admitted(webhook, server.VALIDATE_INFERENCESET_PATH, bad, "InferenceSet")
    message = answer["status"]["message"]
    assert answer["allowed"] is False
    assert "spec.template.inference.preset.name: unsupported inference preset name 'gpt-17'" in message
    assert "metadata.annotations[scaledobject.kaito.sh/metrics][0].downthreshold" in message
    assert "max-replicas (4) is below min-replicas (6)" in message
    frozen = copy.deepcopy(good)
    frozen["spec"]["template"]["resource"]["partition"] = {"mode": "mig", "profile": "1g.10gb"}
    answer = await admitted(webhook, server.VALIDATE_INFERENCESET_PATH, frozen, "InferenceSet", operation="UPDATE",
                            old=good)
    assert answer["allowed"] is False and "spec.template.resource.partition: field is immutable" in answer["status"][
        "message"]


async def test_ragengines_are_admitted_on_either_path(webhook):
    answer = await admitted(webhook, server.VALIDATE_RAGENGINE_PATH, copy.deepcopy(RAG_ALPHA), "RAGEngine")
    assert answer["allowed"] is True, answer
    beta = {"apiVersion": "kaito.sh/v1beta1", "kind": "RAGEngine", "metadata": {"name": "rag"},
            "spec": {"storage": {"vectorDB": {"engine": "chroma", "url": "http://chroma:8000"}},
                     "embedding": {"remote": {"url": "http://embed/v1/embeddings"}}}}
    answer = await admitted(webhook, server.VALIDATE_RAGENGINE_PATH, beta, "RAGEngine")
    assert answer["allowed"] is False
    assert answer["status"]["message"] == ("spec.storage.vectorDB.engine: unsupported vector DB engine 'chroma': "
                                           "use faiss or qdrant")
    misrouted = await admitted(webhook, server.VALIDATE_PATH, beta, "RAGEngine")  # judged by its kind all the same
    assert misrouted["allowed"] is False
