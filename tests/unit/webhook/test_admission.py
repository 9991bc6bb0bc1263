"""The webhook's verdict in words: the same `field: message` lines `kaito validate` prints."""

from __future__ import annotations

import json

import pytest
import yaml

from kaito.api.errors import FieldError
from kaito.catalog.facts import build_catalog_facts
from kaito.cli.validate import run_validate
from kaito.webhook import admission
from tests.unit.api.factories import inference_ws, tuning_ws


def review(obj, operation="CREATE", old=None, uid="u-1"):
    req = {"uid": uid, "operation": operation, "namespace": "default", "object": obj,
           "kind": {"group": "kaito.sh", "version": "v1alpha1", "kind": "Workspace"}}
    if old is not None:
        req["oldObject"] = old
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}).encode()


async def no_configmaps(namespace, name):
    return None


def test_response_shape_for_errors_and_warnings():
    answer = admission.build_review_response("abc", [
        FieldError("resource.instanceType", "too small"),
        FieldError("inference.preset.name", "deprecated", "warning"),
        FieldError("tuning.method", "bad"),
    ])
    resp = answer["response"]
    assert resp["uid"] == "abc" and resp["allowed"] is False
    assert resp["status"]["message"] == "resource.instanceType: too small; tuning.method: bad"
    assert resp["warnings"] == ["inference.preset.name: deprecated"]
    assert admission.build_review_response("x", [])["response"] == {"uid": "x", "allowed": True}


@pytest.mark.parametrize("body", [b"{", b"null", b'{"apiVersion": "v1", "kind": "Pod"}'])
def test_parse_review_rejects_non_reviews(body):
    with pytest.raises(admission.BadReview):
        admission.parse_review(body)


BAD = [
    inference_ws(**{"resource.instanceType": "Standard_NC6s_v3", "inference.preset.name": "falcon-40b"}),
    inference_ws(**{"inference.preset.name": "no-such-model-anywhere"}),
    inference_ws(**{"metadata.name": "Bad_Name", "resource.count": 0}),
    tuning_ws(**{"tuning.method": "full", "resource.count": 2}),
]


@pytest.mark.parametrize("obj", BAD, ids=["sku-too-small", "unknown-preset", "bad-name", "bad-tuning"])
async def test_denial_uses_the_words_of_kaito_validate(obj, tmp_path, capsys):
    facts = build_catalog_facts(read_local_sizes=False)
    hook = admission.WorkspaceAdmission(facts, no_configmaps, "kaito-system")
    answer = (await hook.review(review(obj)))["response"]
    assert answer["allowed"] is False
    path = tmp_path / "ws.yaml"
    path.write_text(yaml.safe_dump(obj))
    assert run_validate([str(path)]) == 1
    printed = capsys.readouterr().out
    for part in answer["status"]["message"].split("; "):
        assert part in printed, f"{part!r} not in kaito validate's output:\n{printed}"


async def test_result_callback_sees_operation_and_verdict():
    seen = []
    hook = admission.WorkspaceAdmission(build_catalog_facts(read_local_sizes=False), no_configmaps, "kaito-system",
                                        on_result=lambda op, ok: seen.append((op, ok)))
    await hook.review(review(BAD[1]))
    await hook.review(review(inference_ws(), "UPDATE", inference_ws()))
    assert seen == [("CREATE", False), ("UPDATE", True)]
