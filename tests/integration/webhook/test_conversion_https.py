"""The conversion webhook (and v1beta1 admission) over real HTTPS on 127.0.0.1.

ConversionReview v1 requests convert Workspaces in both directions without loss; malformed
requests get a 400, never a 500, and the server keeps serving; a well-formed review of something
that is not a Workspace gets a `Failure` result naming the object.
"""

from __future__ import annotations

import copy
import json
import ssl
import uuid

import httpx
import pytest
import pytest_asyncio

from kaito.api import lossless
from kaito.webhook import certs, server, tls
from tests.integration.webhook.test_webhook_https import ConfigMapsOnly
from tests.unit.api.fake_facts import FakeFacts

pytestmark = pytest.mark.asyncio(loop_scope="module")

BETA = {
    "apiVersion": "kaito.sh/v1beta1",
    "kind": "Workspace",
    "metadata": {"name": "ws-beta", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
                 "creationTimestamp": "2025-01-02T03:04:05Z", "generation": 2},
    "resource": {"count": 1, "labelSelector": {"matchLabels": {"apps": "x"}},
                 "partition": {"mode": "accelerator", "count": 2}},
    "inference": {"preset": {"name": "test-validation", "accessMode": "public",
                             "presetOptions": {"modelAccessSecret": "hf-token"}},
                  "config": "my-params", "adapters": [{"source": {"name": "a", "image": "r.io/a:1"}}]},
    "status": {"state": "Ready", "targetNodeCount": 3,
               "conditions": [{"type": "InferenceReady", "status": "True", "reason": "WorkspaceInferenceStatusSuccess",
                               "message": "ok", "lastTransitionTime": "2025-01-02T03:04:05Z"}]},
}
ALPHA = {
    "apiVersion": "kaito.sh/v1alpha1",
    "kind": "Workspace",
    "metadata": {"name": "ws-alpha", "namespace": "default", "annotations": {"team": "a"}},
    "resource": {"count": 1, "instanceType": "Standard_NC12s_v3", "labelSelector": {"matchLabels": {"apps": "y"}}},
    "inference": {"preset": {"name": "test-validation", "accessMode": "public"}},
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


def conversion_review(desired, *objects, uid=None):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": uid or str(uuid.uuid4()), "desiredAPIVersion": desired, "objects": list(objects)}}


async def convert(webhook, desired, *objects):
    review = conversion_review(desired, *objects, uid="c-1")
    resp = await webhook.post(server.CONVERT_PATH, json=review)
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["apiVersion"] == "apiextensions.k8s.io/v1" and answer["kind"] == "ConversionReview"
    assert answer["response"]["uid"] == "c-1"
    return answer["response"]


async def test_v1beta1_to_v1alpha1_and_back_keeps_every_field(webhook):
    down = await convert(webhook, "kaito.sh/v1alpha1", copy.deepcopy(BETA))
    assert down["result"] == {"status": "Success"}
    (alpha,) = down["convertedObjects"]
    assert alpha["apiVersion"] == "kaito.sh/v1alpha1"
    assert "partition" not in alpha["resource"] and "state" not in alpha["status"]
    assert lossless.ANNOTATION in alpha["metadata"]["annotations"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        assert alpha["metadata"][key] == BETA["metadata"][key]  # metadata other than annotations untouched
    up = await convert(webhook, "kaito.sh/v1beta1", alpha)
    (beta,) = up["convertedObjects"]
    assert beta == BETA


async def test_v1alpha1_to_v1beta1_and_back(webhook):
    up = await convert(webhook, "kaito.sh/v1beta1", copy.deepcopy(ALPHA), copy.deepcopy(BETA))
    beta, same = up["convertedObjects"]
    assert beta["apiVersion"] == "kaito.sh/v1beta1" and beta["resource"]["instanceType"] == "Standard_NC12s_v3"
    assert beta["metadata"]["annotations"] == {"team": "a"}
    assert same == BETA  # already in the desired version: returned as it came
    down = await convert(webhook, "kaito.sh/v1alpha1", beta)
    assert down["convertedObjects"][0] == ALPHA


async def test_unconvertible_objects_get_a_failure_result_not_an_error(webhook):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    broken = {**copy.deepcopy(ALPHA), "resource": {"labelSelector": {}, "gpus": 3}}
    for obj, phrase in ((pod, "expected kind Workspace"), (broken, "resource.gpus")):
        answer = await convert(webhook, "kaito.sh/v1beta1", obj)
        assert answer["result"]["status"] == "Failure" and phrase in answer["result"]["message"]
        assert "convertedObjects" not in answer
    answer = await convert(webhook, "kaito.sh/v2", copy.deepcopy(ALPHA))
    assert answer["result"]["status"] == "Failure" and "unsupported version" in answer["result"]["message"]


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b"\xff\xfe\x00", b"null",
    b'{"apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "ConversionReview", "request": {"uid": "x"}}',
    b'{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}',
    b'{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {"uid": ""}}',
    b'{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {"uid": "x", "objects": []}}',
    b'{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", '
    b'"request": {"uid": "x", "desiredAPIVersion": "kaito.sh/v1beta1", "objects": {"a": 1}}}',
    json.dumps(conversion_review("kaito.sh/v1beta1", "not an object", [1, 2], None)).encode(),
    json.dumps(conversion_review("kaito.sh/v1beta1", {"apiVersion": "kaito.sh/v1alpha1", "kind": "Workspace",
                                                      "metadata": "nope"})).encode(),
])
async def test_malformed_reviews_are_400_or_failure_never_500(webhook, body):
    resp = await webhook.post(server.CONVERT_PATH, content=body, headers={"content-type": "application/json"})
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert "error" in resp.json()
    else:
        assert resp.json()["response"]["result"]["status"] == "Failure"
    ok = await convert(webhook, "kaito.sh/v1beta1", copy.deepcopy(ALPHA))
    assert ok["result"]["status"] == "Success"


async def test_conversion_wants_post(webhook):
    assert (await webhook.get(server.CONVERT_PATH)).status_code == 405


def admission_review(obj, version, operation="CREATE", old=None):
    req = {"uid": str(uuid.uuid4()), "operation": operation, "namespace": "default", "object": obj,
           "kind": {"group": "kaito.sh", "version": version, "kind": "Workspace"}}
    if old is not None:
        req["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


async def test_v1beta1_workspaces_are_admitted_by_their_own_rules(webhook):
    good = copy.deepcopy(BETA)
    del good["resource"]["partition"], good["status"], good["inference"]["config"]
    good["resource"]["instanceType"] = "Standard_NC12s_v3"
    answer = (await webhook.post(server.VALIDATE_PATH, json=admission_review(good, "v1beta1"))).json()["response"]
    assert answer["allowed"] is True, answer
    no_sku = copy.deepcopy(good)
    del no_sku["resource"]["instanceType"]  # v1beta1 has no default; auto-provisioning needs one
    answer = (await webhook.post(server.VALIDATE_PATH, json=admission_review(no_sku, "v1beta1"))).json()["response"]
    assert answer["allowed"] is False and "resource.instanceType: instanceType is required" in answer["status"]["message"]
    missing_cm = copy.deepcopy(good)
    missing_cm["inference"]["config"] = "nope"  # the webhook reads it from the cluster: absent
    answer = (await webhook.post(server.VALIDATE_PATH, json=admission_review(missing_cm, "v1beta1"))).json()["response"]
    assert answer["allowed"] is False and "inference.config: ConfigMap 'nope'" in answer["status"]["message"]
