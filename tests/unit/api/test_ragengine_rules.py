"""RAGEngine admission (kaito-v0.12.md §4.1) through the one entry point, `kaito.api.admission.admit`.

KAITO v0.12's tables (`api/v1beta1/ragengine_validation_test.go`: TestRAGEngineValidateCreate,
TestLocalEmbeddingValidateCreate, TestRemoteEmbeddingValidateCreate, TestInferenceServiceValidateCreate,
TestRAGEngineValidateGuardrails) become rows here, each naming the field KAITO's message hid
(`remote url`, ``); then ours: the vector DB engine KAITO never checks, storage, compute, UPDATE,
v1alpha1's own shape.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from kaito.api import ragengine
from kaito.api.admission import AdmissionOptions, ClusterReads, admit, parse_request
from tests.unit.api.factories import DELETE, set_path
from tests.unit.api.fake_facts import FakeFacts

BASE = {
    "apiVersion": "kaito.sh/v1beta1",
    "kind": "RAGEngine",
    "metadata": {"name": "rag", "namespace": "default"},
    "spec": {
        "compute": {"instanceType": "Standard_NV36ads_A10_v5", "labelSelector": {"matchLabels": {"apps": "rag"}}},
        "embedding": {"local": {"modelID": "BAAI/bge-small-en-v1.5"}},
        "inferenceService": {"url": "http://example.com", "contextWindowSize": 512},
    },
}


def make(**overrides: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    for path, value in overrides.items():
        set_path(doc, path, value if value is DELETE else copy.deepcopy(value))
    return doc


def alpha(**overrides: Any) -> dict[str, Any]:
    return make(apiVersion="kaito.sh/v1alpha1", **overrides)


@dataclass
class Case:
    name: str
    obj: dict[str, Any]
    errors: tuple[str, ...] = ()
    message: str = ""
    warnings: tuple[str, ...] = ()
    old: dict[str, Any] | None = None
    options: AdmissionOptions = field(default_factory=AdmissionOptions)
    reads: ClusterReads | None = None


GUARD = {"enabled": True, "configMapRef": {"name": "guardrails-policy"}}
CASES = [
    # TestRAGEngineValidateCreate
    Case("both local and remote", make(**{"spec.embedding.remote": {"url": "http://remote-embedding.com"}}),
         ("spec.embedding",), "not both"),
    Case("embedding not specified", make(**{"spec.embedding": DELETE}), ("spec.embedding",), "embedding is required"),
    Case("inference service not specified", make(**{"spec.inferenceService": DELETE})),
    Case("compute not specified", make(**{"spec.compute": DELETE})),
    Case("neither local nor remote", make(**{"spec.embedding": {}}), ("spec.embedding",), "neither is set"),
    Case("only local", make()),
    Case("only remote", make(**{"spec.embedding": {"remote": {"url": "http://remote-embedding.com"}}})),
    Case("remote with context window 0", make(**{"spec.embedding": {"remote": {"url": "http://remote-embedding.com"}},
                                                 "spec.inferenceService.contextWindowSize": 0}),
         ("spec.inferenceService.contextWindowSize",), "positive number of tokens"),
    # TestLocalEmbeddingValidateCreate
    Case("local: neither image nor modelID", make(**{"spec.embedding.local": {}}), ("spec.embedding.local",),
         "neither is set"),
    Case("local: both image and modelID", make(**{"spec.embedding.local": {"image": "image-path", "modelID": "m"}}),
         ("spec.embedding.local",), "not both"),
    Case("local: invalid image format", make(**{"spec.embedding.local": {"image": "invalid-image-format"}}),
         ("spec.embedding.local.image",), "invalid image format"),
    Case("local: valid image", make(**{"spec.embedding.local": {"image": "myrepo/myimage:tag"}}),
         warnings=("spec.embedding.local.image",)),
    Case("local: valid modelID", make(**{"spec.embedding.local": {"modelID": "valid-model-id"}})),
    # TestRemoteEmbeddingValidateCreate
    Case("remote: invalid url", make(**{"spec.embedding": {"remote": {"url": "invalid-url"}}}),
         ("spec.embedding.remote.url",), "not an http(s) URL"),
    Case("remote: valid url", make(**{"spec.embedding": {"remote": {"url": "http://example.com"}}})),
    # TestInferenceServiceValidateCreate
    Case("inference: invalid url", make(**{"spec.inferenceService.url": "invalid-url"}),
         ("spec.inferenceService.url",), "not an http(s) URL"),
    Case("inference: in-cluster url", make(**{"spec.inferenceService.url": "http://phi-4.team.svc/v1/chat/completions"})),
    Case("inference: retrieve-only (no url)", make(**{"spec.inferenceService.url": DELETE})),
    Case("inference: bad port", make(**{"spec.inferenceService.url": "http://example.com:http/"}),
         ("spec.inferenceService.url",), "invalid URL"),
    # TestRAGEngineValidateGuardrails (the ConfigMaps read by the caller)
    Case("guardrails: named policy is valid", make(**{"spec.guardrails": GUARD}), warnings=("spec.guardrails.enabled",),
         reads=ClusterReads(configmaps={("default", "guardrails-policy"): {"guardrails.yaml": "action: redact\n"}},
                            complete=True)),
    Case("guardrails: policy file missing", make(**{"spec.guardrails": GUARD}), ("spec.guardrails.configMapRef.name",),
         "has no guardrails.yaml", reads=ClusterReads(configmaps={("default", "guardrails-policy"): {"other.yaml": ""}},
                                                       complete=True)),
    Case("guardrails: named ConfigMap missing", make(**{"spec.guardrails": GUARD}), ("spec.guardrails.configMapRef.name",),
         "does not exist", reads=ClusterReads(complete=True)),
    Case("guardrails: default policy", make(**{"spec.guardrails": {"enabled": True}}),
         warnings=("spec.guardrails.enabled",), reads=ClusterReads(complete=True)),
    Case("guardrails: off", make(**{"spec.guardrails": {"enabled": False, "configMapRef": {"name": "x"}}}),
         reads=ClusterReads(complete=True)),
    # Ours: the vector DB engine, named in the error (KAITO's service crashes at start-up instead).
    Case("vectorDB: unknown engine", make(**{"spec.storage.vectorDB": {"engine": "milvus", "url": "http://milvus:19530"}}),
         ("spec.storage.vectorDB.engine",), "unsupported vector DB engine 'milvus': use faiss or qdrant"),
    Case("vectorDB: qdrant, any case", make(**{"spec.storage.vectorDB": {"engine": "Qdrant", "url": "http://q:6333",
                                                                       "accessSecret": "qdrant-key"}})),
    Case("vectorDB: bad url", make(**{"spec.storage.vectorDB": {"engine": "qdrant", "url": "q:6333"}}),
         ("spec.storage.vectorDB.url",)),
    Case("vectorDB: faiss ignores the url", make(**{"spec.storage.vectorDB": {"engine": "faiss", "url": "http://x:1"}}),
         warnings=("spec.storage.vectorDB.url",)),
    Case("vectorDB: qdrant local mode", make(**{"spec.storage.vectorDB": {"engine": "qdrant", "url": ""}}),
         warnings=("spec.storage.vectorDB.url",)),
    Case("vectorDB: missing url field", make(**{"spec.storage.vectorDB": {"engine": "qdrant"}}),
         ("spec.storage.vectorDB.url",), "required"),
    # Storage, secrets, names.
    Case("volume without claim", make(**{"spec.storage.persistentVolume": {"mountPath": "/data"}}),
         ("spec.storage.persistentVolume.persistentVolumeClaim",)),
    Case("relative mount path", make(**{"spec.storage.persistentVolume": {"persistentVolumeClaim": "c",
                                                                          "mountPath": "data"}}),
         ("spec.storage.persistentVolume.mountPath",), "absolute path"),
    Case("bad secret name", make(**{"spec.inferenceService.accessSecret": "My_Secret"}),
         ("spec.inferenceService.accessSecret",), "not a valid Secret name"),
    Case("name starts with a digit", make(**{"metadata.name": "1rag"}), ("metadata.name",), "DNS-1035"),
    Case("no spec", make(**{"spec": DELETE}), ("spec",)),
    Case("unknown field", make(**{"spec.embedding.local.model": "x"}), ("spec.embedding.local.model",), "unknown field"),
    # Compute: SKU known, selector convertible, one node, instanceType by node provisioning.
    Case("compute: unknown SKU", make(**{"spec.compute.instanceType": "Gpu_Unknown"}), ("spec.compute.instanceType",),
         "Unsupported instance type"),
    Case("compute: Exists selector", make(**{"spec.compute.labelSelector": {"matchExpressions": [
        {"key": "apps", "operator": "Exists"}]}}), ("spec.compute.labelSelector.matchExpressions[0]",)),
    Case("compute: two nodes", make(**{"spec.compute.count": 2}), ("spec.compute.count",)),
    Case("compute: no SKU, auto-provisioned", make(**{"spec.compute.instanceType": DELETE}),
         ("spec.compute.instanceType",), "instanceType is required"),
    Case("compute: no SKU, BYO nodes", make(**{"spec.compute.instanceType": DELETE}),
         options=AdmissionOptions(auto_provisioning=False)),
    # UPDATE: the create rules again, compute frozen.
    Case("update: compute added", make(), ("spec.compute",), "cannot be added", old=make(**{"spec.compute": DELETE})),
    Case("update: compute removed", make(**{"spec.compute": DELETE}), ("spec.compute",), "cannot be removed",
         old=make()),
    Case("update: SKU changed", make(**{"spec.compute.instanceType": "Standard_NC12s_v3"}),
         ("spec.compute.instanceType",), "cannot change", old=make()),
    Case("update: selector changed", make(**{"spec.compute.labelSelector.matchLabels": {"apps": "other"}}),
         ("spec.compute.labelSelector",), "immutable", old=make()),
    Case("update: create rules again", make(**{"spec.inferenceService.contextWindowSize": -1}),
         ("spec.inferenceService.contextWindowSize",), old=make()),
    Case("update: embedding may change", make(**{"spec.embedding": {"remote": {"url": "http://e"}}}), old=make()),
    # v1alpha1: its own shape and rules.
    Case("v1alpha1: valid", alpha(**{"spec.storage": {"persistentVolumeClaim": "c", "mountPath": "/data"},
                                     "spec.queryServiceName": "q"})),
    Case("v1alpha1: mount path only (an emptyDir)", alpha(**{"spec.storage": {"mountPath": "/data"}})),
    Case("v1alpha1: url required", alpha(**{"spec.inferenceService.url": DELETE}), ("spec.inferenceService.url",),
         "required in kaito.sh/v1alpha1"),
    Case("v1alpha1: no vectorDB field", alpha(**{"spec.storage": {"vectorDB": {"engine": "faiss", "url": ""}}}),
         ("spec.storage.vectorDB",), "unknown field"),
    Case("v1alpha1: relative mount path", alpha(**{"spec.storage": {"mountPath": "data"}}), ("spec.storage.mountPath",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_ragengine_rule(case: Case) -> None:
    verdict = admit(case.obj, case.old, facts=FakeFacts(), options=case.options, reads=case.reads)
    assert verdict.kind == "RAGEngine"
    assert sorted({e.path for e in verdict.errors}) == sorted(case.errors), [str(p) for p in verdict.problems]
    if case.message:
        assert case.message in verdict.errors[0].message
    for path in case.warnings:
        assert path in {w.path for w in verdict.warnings}, [str(w) for w in verdict.warnings]
    if not case.errors:
        assert verdict.allowed and isinstance(verdict.obj, ragengine.RAGEngine)


def test_needs_names_only_a_named_guardrails_configmap():
    assert parse_request(make(**{"spec.guardrails": GUARD})).needs().configmaps[0].key == ("default", "guardrails-policy")
    assert parse_request(make(**{"spec.guardrails": {"enabled": True}})).needs().configmaps == ()
    assert parse_request(make()).needs().node_labels is None


def test_v1alpha1_defaults_the_sku_and_keeps_its_own_fields():
    verdict = admit(alpha(**{"spec.compute.instanceType": DELETE, "spec.indexServiceName": "idx"}), facts=FakeFacts())
    assert verdict.allowed, verdict.problems
    assert verdict.obj.spec.compute.instance_type == "Standard_NC24ads_A100_v4"  # KAITO v0.12's v1alpha1 default
    assert verdict.obj.spec.index_service_name == "idx" and verdict.api_version == "kaito.sh/v1alpha1"
