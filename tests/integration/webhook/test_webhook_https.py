"""The webhook over real HTTPS on 127.0.0.1 with a generated certificate.

AdmissionReview requests built from the admission cases are answered allowed/denied with exactly
the messages `kaito.api` gives (what `kaito validate` prints); malformed bodies get a 400 and the
server keeps serving.
"""

from __future__ import annotations

import json
import ssl
import uuid

import httpx
import pytest
import pytest_asyncio

from kaito.api.errors import errors_only, warnings_only
from kaito.api.v1alpha1 import Workspace
from kaito.api.validation import default_configmap_name, validate_tuning_config, validate_workspace
from kaito.webhook import certs, server, tls
from tests.unit.api.fake_facts import FakeFacts
from tests.unit.webhook.cases import CASES

TEMPLATES = {
    "lora-params-template": "training_config:\n  QuantizationConfig:\n    load_in_4bit: false\n",
    "qlora-params-template": "training_config:\n  QuantizationConfig:\n    load_in_4bit: true\n",
}


class ConfigMapsOnly:
    """Just enough of a Cluster for admission: the release namespace's tuning templates."""

    async def get(self, kind, name, namespace=None):
        from kaito.cluster import errors

        if kind.kind == "ConfigMap" and namespace == "kaito-system" and name in TEMPLATES:
            return {"data": {"training_config.yaml": TEMPLATES[name]}}
        raise errors.NotFound(f"{name} not found")


# Function loop scope: the server must live on the test's own event loop.
@pytest_asyncio.fixture(loop_scope="function")
async def webhook(tmp_path):
    bundle = certs.build_cert_bundle(["localhost"], ip_addresses=["127.0.0.1"])
    tls.write_cert_dir(bundle, tmp_path)
    cfg = server.WebhookConfig(host="127.0.0.1", port=0, cert_dir=tmp_path, release_namespace="kaito-system")
    srv = server.WebhookServer(ConfigMapsOnly(), FakeFacts(), cfg)
    await srv.start()
    ctx = ssl.create_default_context(cadata=bundle.ca_cert.decode())
    async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{srv.port}", verify=ctx) as client:
        yield client
    await srv.stop()


def review(operation, obj, old=None, uid=None):
    request = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": "kaito.sh", "version": "v1alpha1", "kind": "Workspace"},
        "resource": {"group": "kaito.sh", "version": "v1alpha1", "resource": "workspaces"},
        "operation": operation,
        "namespace": "default",
        "object": obj,
    }
    if old is not None:
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def expected_problems(obj, old):
    facts = FakeFacts()
    new_ws = Workspace.from_dict(obj)
    problems = validate_workspace(new_ws, Workspace.from_dict(old) if old else None, facts=facts)
    if new_ws.tuning is not None and old is None:
        name = new_ws.tuning.config or default_configmap_name(new_ws.tuning.method)
        if name is None:
            return problems
        data = {"training_config.yaml": TEMPLATES[name]} if name in TEMPLATES else None
        problems += validate_tuning_config(name, data, new_ws.tuning.method, "kaito-system")
    return problems


@pytest.mark.parametrize(("case", "operation", "obj", "old", "allowed"), CASES, ids=[c[0] for c in CASES])
async def test_cases_answered_with_kaito_api_messages(webhook, case, operation, obj, old, allowed):
    uid = f"uid-{case}"
    resp = await webhook.post(server.VALIDATE_PATH, json=review(operation, obj, old, uid))
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == uid
    assert answer["response"]["allowed"] is allowed
    if case == "unknown-field":  # does not parse: the parser's field error, as `kaito validate` shows it
        assert "resource.gpus: unknown field" in answer["response"]["status"]["message"]
        return
    problems = expected_problems(obj, old)
    errors = errors_only(problems)
    assert bool(errors) is not allowed, f"the case table is stale: {problems}"
    if errors:
        assert answer["response"]["status"]["message"] == "; ".join(str(e) for e in errors)
        assert answer["response"]["status"]["code"] == 403
    else:
        assert "status" not in answer["response"]
    assert answer["response"].get("warnings", []) == [str(w)[:120] for w in warnings_only(problems)]


async def test_missing_tuning_configmap_is_denied(webhook):
    obj = Workspace.from_dict(CASES[1][2]).to_dict()
    obj["tuning"]["config"] = "my-config"
    resp = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", obj))
    answer = resp.json()["response"]
    assert answer["allowed"] is False
    assert "tuning.config" in answer["status"]["message"] and "my-config" in answer["status"]["message"]


async def test_qlora_with_lora_template_settings_is_denied(webhook):
    obj = json.loads(json.dumps(CASES[1][2]))
    obj["tuning"]["method"] = "qlora"
    resp = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", obj))
    answer = resp.json()["response"]
    assert answer["allowed"] is True  # the qlora template sets load_in_4bit
    obj["tuning"]["config"] = ""
    TEMPLATES_BACKUP = TEMPLATES["qlora-params-template"]
    TEMPLATES["qlora-params-template"] = TEMPLATES["lora-params-template"]
    try:
        resp = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", obj))
    finally:
        TEMPLATES["qlora-params-template"] = TEMPLATES_BACKUP
    answer = resp.json()["response"]
    assert answer["allowed"] is False and "qlora" in answer["status"]["message"]


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b'{"apiVersion": "admission.k8s.io/v1"}',
    b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}}',
    b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "CREATE"}}',
    b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": "CREATE"}',
    b"\xff\xfe\x00",
])
async def test_malformed_review_gets_400_and_server_survives(webhook, body):
    resp = await webhook.post(server.VALIDATE_PATH, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert "error" in resp.json()
    ok = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", CASES[0][2]))
    assert ok.status_code == 200 and ok.json()["response"]["allowed"] is True


async def test_objects_that_are_not_workspaces_are_denied_not_crashed(webhook):
    for obj in (None, 42, "text", [], {"apiVersion": "kaito.sh/v9", "kind": "Workspace"}):
        resp = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", obj))
        assert resp.status_code == 200
        assert resp.json()["response"]["allowed"] is False


async def test_delete_and_deleting_objects_are_allowed(webhook):
    resp = await webhook.post(server.VALIDATE_PATH, json=review("DELETE", None))
    assert resp.json()["response"]["allowed"] is True
    bad = json.loads(json.dumps(CASES[4][2]))  # an unknown preset: denied on CREATE ...
    bad["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    resp = await webhook.post(server.VALIDATE_PATH, json=review("UPDATE", bad, bad))
    assert resp.json()["response"]["allowed"] is True  # ... but finalizer removal is never blocked


async def test_wrong_path_and_method(webhook):
    assert (await webhook.get(server.VALIDATE_PATH)).status_code == 405
    assert (await webhook.post("/validate/other", json={})).status_code == 404
    assert (await webhook.get("/healthz")).status_code == 200


async def test_plain_http_to_tls_port_does_not_kill_server(webhook):
    port = int(str(webhook.base_url).rsplit(":", 1)[1].rstrip("/"))
    async with httpx.AsyncClient() as plain:
        with pytest.raises(httpx.HTTPError):
            await plain.post(f"http://127.0.0.1:{port}{server.VALIDATE_PATH}", json={})
    assert (await webhook.get("/healthz")).status_code == 200
