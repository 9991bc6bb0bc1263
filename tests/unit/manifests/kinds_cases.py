"""Inputs of the InferenceSet and RAGEngine golden files: each case renders one list of objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kaito.api import autoscaling, kinds
from kaito.catalog import skus
from kaito.manifests import gateway, images, inferenceset, ragengine, scaledobject

IMAGES = images.ImageSettings(registry="registry.test/kaito", tag="0.0.0-test")

SET = {
    "apiVersion": "kaito.sh/v1beta1",
    "kind": "InferenceSet",
    "metadata": {
        "name": "phi-4", "namespace": "team", "uid": "7d6c5a4e-0000-4000-8000-000000000001",
        "labels": {"app": "chat"},
        "annotations": {
            "kaito.sh/disable-benchmark": "true",
            autoscaling.AUTO_PROVISION: "true",
            autoscaling.METRICS: "- {name: 'vllm:num_requests_waiting', type: gauge, upthreshold: 10, downthreshold: 2}\n"
                                 "- {name: 'vllm:time_to_first_token_seconds', type: histogram, upthreshold: 0.5, "
                                 "downthreshold: 0.1, metriccachewindow: 120}",
            autoscaling.MIN_REPLICAS: "2",
            autoscaling.MAX_REPLICAS: "6",
            autoscaling.EVALUATION_WINDOW: "30",
            autoscaling.SCALE_DOWN_COOLDOWN: "600",
        },
    },
    "spec": {
        "replicas": 2,
        "labelSelector": {"matchLabels": {"apps": "phi-4"}},
        "template": {
            "metadata": {"labels": {"team": "search"}, "annotations": {"kaito.sh/runtime": "vllm"}},
            "resource": {"instanceType": "Standard_NC24ads_A100_v4"},
            "inference": {"preset": {"name": "phi-4-mini-instruct"}, "config": "phi-4-params"},
        },
    },
}
BYO_SET = {
    "apiVersion": "kaito.sh/v1alpha1",
    "kind": "InferenceSet",
    "metadata": {"name": "llama", "namespace": "default"},
    "spec": {
        "replicas": 1,
        "nodeCountLimit": 8,
        "labelSelector": {"matchLabels": {"gpu": "h100"}},
        "template": {
            "resource": {"instanceType": "Standard_ND96isr_H100_v5"},  # dropped for BYO children, as KAITO
            "inference": {"preset": {"name": "llama-3.1-8b-instruct", "presetOptions": {"modelAccessSecret": "hf"}}},
        },
    },
}
RAG_LOCAL = {
    "apiVersion": "kaito.sh/v1beta1",
    "kind": "RAGEngine",
    "metadata": {"name": "docs", "namespace": "team", "uid": "7d6c5a4e-0000-4000-8000-000000000002"},
    "spec": {
        "compute": {"instanceType": "Standard_NC6s_v3", "labelSelector": {"matchLabels": {"apps": "rag"}}},
        "storage": {"persistentVolume": {"persistentVolumeClaim": "docs-index", "mountPath": "/var/rag"},
                    "vectorDB": {"engine": "Qdrant", "url": "http://qdrant.team.svc:6333", "accessSecret": "qdrant"}},
        "embedding": {"local": {"modelID": "BAAI/bge-small-en-v1.5", "modelAccessSecret": "hf-token"}},
        "inferenceService": {"url": "http://phi-4.team.svc/v1/chat/completions", "accessSecret": "llm-key",
                             "contextWindowSize": 16384},
    },
}
RAG_REMOTE = {
    "apiVersion": "kaito.sh/v1alpha1",
    "kind": "RAGEngine",
    "metadata": {"name": "wiki", "namespace": "default", "annotations": {"kaito.sh/enablelb": "True"}},
    "spec": {
        "embedding": {"remote": {"url": "https://embeddings.example.com/v1/embeddings", "accessSecret": "embed-key"}},
        "inferenceService": {"url": "http://phi-4/v1/chat/completions", "contextWindowSize": 4096},
    },
}


def hub(obj: dict[str, Any]) -> Any:
    return kinds.parse_object(obj)[0]


def _children() -> list[dict[str, Any]]:
    inputs = inferenceset.InferenceSetInputs(inference_set=hub(SET))
    return inferenceset.build_child_workspaces(inputs, inferenceset.build_replica_names(inputs))


def _children_byo() -> list[dict[str, Any]]:
    inputs = inferenceset.InferenceSetInputs(inference_set=hub(BYO_SET), auto_provisioning=False)
    return inferenceset.build_child_workspaces(inputs, ["llama-0"])


def _scaled_object() -> list[dict[str, Any]]:
    obj = hub(SET)
    policy, problems = autoscaling.parse_autoscaling(obj.annotations, node_count_limit=obj.spec.node_count_limit)
    assert policy is not None and not problems, problems
    high = scaledobject.compute_max_replicas(policy, obj.spec.node_count_limit, None)
    return [scaledobject.build_scaled_object(scaledobject.ScaledObjectInputs(inference_set=obj, policy=policy,
                                                                             max_replicas=high))]


def _scaled_object_node_limit() -> list[dict[str, Any]]:
    obj = hub({**BYO_SET, "metadata": {**BYO_SET["metadata"], "annotations": {
        autoscaling.AUTO_PROVISION: "true",
        autoscaling.METRICS: '[{"name": "vllm:kv_cache_usage_perc", "type": "gauge", "upthreshold": 0.8, '
                             '"downthreshold": 0.3}]'}}})
    policy, _ = autoscaling.parse_autoscaling(obj.annotations, node_count_limit=obj.spec.node_count_limit)
    high = scaledobject.compute_max_replicas(policy, obj.spec.node_count_limit, target_node_count=2)  # 8 ÷ 2
    return [scaledobject.build_scaled_object(scaledobject.ScaledObjectInputs(
        inference_set=obj, policy=policy, max_replicas=high, scaler_namespace="keda"))]


def _gateway() -> list[dict[str, Any]]:
    return gateway.build_gateway_objects(gateway.GatewayInputs(inference_set=hub(SET)))


def _gateway_multinode() -> list[dict[str, Any]]:
    return gateway.build_gateway_objects(gateway.GatewayInputs(inference_set=hub(BYO_SET), multi_node=True))


def _rag_local() -> list[dict[str, Any]]:
    gpu = skus.lookup_sku("Standard_NC6s_v3", "azure")
    return ragengine.build_ragengine_objects(ragengine.RAGEngineInputs(ragengine=hub(RAG_LOCAL), images=IMAGES,
                                                                       gpu=gpu, revision=1))


def _rag_remote() -> list[dict[str, Any]]:
    return ragengine.build_ragengine_objects(ragengine.RAGEngineInputs(ragengine=hub(RAG_REMOTE), images=IMAGES))


CASES: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "inferenceset-children-phi-4": _children,
    "inferenceset-children-byo": _children_byo,
    "scaledobject-phi-4": _scaled_object,
    "scaledobject-node-count-limit": _scaled_object_node_limit,
    "gateway-phi-4": _gateway,
    "gateway-multinode-llama": _gateway_multinode,
    "ragengine-local-gpu-qdrant": _rag_local,
    "ragengine-remote-faiss": _rag_remote,
}
