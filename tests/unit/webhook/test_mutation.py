"""The mutating webhook's version stamp: which version a Workspace's spec was written in.

The patch must say the request's version on a create and on an update that changes the spec, keep
the stored record on an update that does not (the controller's own writes), never touch other
kinds, and always allow. Applied with a real JSONPatch implementation, as the API server applies it.
"""

from __future__ import annotations

import base64
import copy
import json

import jsonpatch
import pytest

from kaito.api import labels
from kaito.webhook import admission, mutation

STAMP = labels.ANNOTATION_API_VERSION
BETA = {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace", "metadata": {"name": "w", "namespace": "default"},
        "resource": {"instanceType": "Standard_NC24ads_A100_v4", "labelSelector": {"matchLabels": {"a": "b"}}},
        "inference": {"preset": {"name": "phi-4-mini-instruct"}}}
ALPHA = {**copy.deepcopy(BETA), "apiVersion": "kaito.sh/v1alpha1"}


def body(operation, obj, old=None, kind="Workspace"):
    request = {"uid": "u1", "operation": operation, "namespace": "default",
               "kind": {"group": "kaito.sh", "version": obj.get("apiVersion", "/").split("/")[-1], "kind": kind},
               "object": obj}
    if old is not None:
        request["oldObject"] = old
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}).encode()


def mutated(operation, obj, old=None, kind="Workspace") -> dict:
    answer = mutation.review(body(operation, obj, old, kind))["response"]
    assert answer["allowed"] is True and answer["uid"] == "u1"
    if "patch" not in answer:
        return obj
    assert answer["patchType"] == "JSONPatch"
    return jsonpatch.apply_patch(obj, json.loads(base64.b64decode(answer["patch"])))


@pytest.mark.parametrize("obj", [ALPHA, BETA], ids=["v1alpha1", "v1beta1"])
def test_a_create_records_its_version(obj) -> None:
    assert mutated("CREATE", copy.deepcopy(obj))["metadata"]["annotations"] == {STAMP: obj["apiVersion"]}


def test_existing_annotations_are_kept_and_a_slash_in_the_key_is_escaped() -> None:
    obj = copy.deepcopy(ALPHA)
    obj["metadata"]["annotations"] = {"kaito.sh/runtime": "transformers"}
    out = mutated("CREATE", obj)
    assert out["metadata"]["annotations"] == {"kaito.sh/runtime": "transformers", STAMP: "kaito.sh/v1alpha1"}


def test_an_update_of_the_spec_records_the_writers_version() -> None:
    old = copy.deepcopy(ALPHA)
    old["metadata"]["annotations"] = {STAMP: "kaito.sh/v1alpha1"}
    new = copy.deepcopy(BETA)
    new["metadata"]["annotations"] = {STAMP: "kaito.sh/v1alpha1"}
    new["inference"]["preset"]["name"] = "phi-4"
    assert mutated("UPDATE", new, old)["metadata"]["annotations"][STAMP] == "kaito.sh/v1beta1"


def test_an_update_that_leaves_the_spec_alone_keeps_the_record() -> None:
    # The controller writes its finalizer in v1beta1 over a Workspace written in v1alpha1.
    old = copy.deepcopy(BETA)
    old["metadata"]["annotations"] = {STAMP: "kaito.sh/v1alpha1"}
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["workspace.finalizer.kaito.sh"]
    assert mutation.review(body("UPDATE", new, old))["response"] == {"uid": "u1", "allowed": True}
    # Without a record (a Workspace stored before the webhook was installed), none is invented.
    del old["metadata"]["annotations"], new["metadata"]["annotations"]
    assert "annotations" not in mutated("UPDATE", new, old)["metadata"]


def test_other_kinds_and_operations_are_left_alone() -> None:
    assert mutation.review(body("DELETE", copy.deepcopy(BETA)))["response"] == {"uid": "u1", "allowed": True}
    assert mutation.review(body("CREATE", copy.deepcopy(BETA), kind="RAGEngine"))["response"].get("patch") is None
    assert mutation.review(body("CREATE", {"apiVersion": "kaito.sh/v1beta1", "kind": "Workspace"}))["response"] == {
        "uid": "u1", "allowed": True}


def test_a_body_that_is_no_review_is_a_bad_review() -> None:
    with pytest.raises(admission.BadReview):
        mutation.review(b"[]")
