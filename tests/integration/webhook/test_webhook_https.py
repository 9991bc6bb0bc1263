"""The webhook over real HTTPS on 127.0.0.1 with a generated certificate.

AdmissionReview requests built from every case of the api engineer's validation table
(`tests/unit/api/test_validation_table.py`) are answered allowed/denied with exactly the messages
`kaito.api` gives (what `kaito validate` prints); malformed bodies get a 400 and the server keeps
serving.
"""

from __future__ import annotations

import json
import ssl
import uuid

import httpx
import pytest
import pytest_asyncio

from kaito.api.admission import AdmissionOptions, ClusterReads, admit
from kaito.api.errors import errors_only, warnings_only
from kaito.webhook import certs, server, tls
from tests.unit.api.factories import inference_ws, tuning_ws
from tests.unit.api.fake_facts import FakeFacts
from tests.unit.api.validation_cases import CASES

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


# One server for the module, on the module's event loop (the tests run on that loop too).
pytestmark = pytest.mark.asyncio(loop_scope="module")


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


READS = ClusterReads(configmaps={("kaito-system", name): {"training_config.yaml": text}
                                 for name, text in TEMPLATES.items()}, complete=True)


def expected_problems(obj, old):
    """What `kaito.api.admission.admit` says with what the webhook reads from the cluster."""
    options = AdmissionOptions(release_namespace="kaito-system")
    return admit(obj, old, facts=FakeFacts(), options=options, reads=READS, namespace="default").problems


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_table_cases_answered_with_kaito_api_messages(webhook, case):
    uid = f"uid-{case.id}"
    operation = "UPDATE" if case.old is not None else "CREATE"
    resp = await webhook.post(server.VALIDATE_PATH, json=review(operation, case.new, case.old, uid))
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == uid
    problems = expected_problems(case.new, case.old)
    errors = errors_only(problems)
    if case.expect:  # the table says "rejected": so must the webhook
        assert answer["response"]["allowed"] is False
    assert answer["response"]["allowed"] is (not errors)
    if errors:
        assert answer["response"]["status"]["message"] == "; ".join(str(e) for e in errors)
        assert answer["response"]["status"]["code"] == 403
    else:
        assert "status" not in answer["response"]
    assert answer["response"].get("warnings", []) == [str(w)[:120] for w in warnings_only(problems)]


async def test_unparseable_workspace_denied_with_parser_field_error(webhook):
    resp = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", inference_ws(**{"resource.gpus": 3})))
    answer = resp.json()["response"]
    assert answer["allowed"] is False
    assert "resource.gpus: unknown field" in answer["status"]["message"]


async def test_missing_tuning_configmap_is_denied(webhook):
    obj = tuning_ws()
    obj["tuning"]["config"] = "my-config"
    resp = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", obj))
    answer = resp.json()["response"]
    assert answer["allowed"] is False
    assert "tuning.config" in answer["status"]["message"] and "my-config" in answer["status"]["message"]


async def test_qlora_with_lora_template_settings_is_denied(webhook):
    obj = json.loads(json.dumps(tuning_ws()))
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
    ok = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", inference_ws()))
    assert ok.status_code == 200 and ok.json()["response"]["allowed"] is True


async def test_objects_that_are_not_workspaces_are_denied_not_crashed(webhook):
    for obj in (None, 42, "text", [], {"apiVersion": "kaito.sh/v9", "kind": "Workspace"}):
        resp = await webhook.post(server.VALIDATE_PATH, json=review("CREATE", obj))
        assert resp.status_code == 200
        assert resp.json()["response"]["allowed"] is False


async def test_delete_and_deleting_objects_are_allowed(webhook):
    resp = await webhook.post(server.VALIDATE_PATH, json=review("DELETE", None))
    assert resp.json()["response"]["allowed"] is True
    bad = inference_ws(**{"inference.preset.name": "no-such-model"})  # an unknown preset: denied on CREATE ...
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


async def test_mutate_stamps_the_version_over_https(webhook):
    import base64

    import jsonpatch

    obj = inference_ws()
    resp = await webhook.post(server.MUTATE_PATH, json=review("CREATE", obj, uid="m1"))
    assert resp.status_code == 200
    answer = resp.json()["response"]
    assert answer["uid"] == "m1" and answer["allowed"] is True and answer["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(answer["patch"])))
    assert patched["metadata"]["annotations"] == {"workspace.kaito.sh/api-version": "kaito.sh/v1alpha1"}
    bad = await webhook.post(server.MUTATE_PATH, content=b"{not json")
    assert bad.status_code == 400
