"""Gateway API Inference Extension objects for an InferenceSet (kaito-v0.12.md §3.4), rendered directly.

KAITO v0.12 asks Flux to install the llm-d router chart from an OCI registry (an OCIRepository and
a HelmRelease per set, then waits for Flux). We render what that chart installs instead: the
`InferencePool` selecting the set's serving pods on port 5000, and its endpoint picker (EPP) — a
Deployment, its Service (gRPC ext-proc 9002), its plugin ConfigMap and the ServiceAccount, Role and
RoleBinding it needs to watch pods and pools. Reasons: no Flux controllers and no chart pull at
reconcile time (air-gapped clusters mirror one image), every object server-side applied and owned by
the set like everything else we create, and this file shows exactly what runs. The price: EPP flag
changes across router versions are ours to follow (the image is a setting).

Which pods serve: single-node children run as Deployments, every pod a server; multi-node children
run as StatefulSets where only pod 0 serves HTTP (`apps.kubernetes.io/pod-index: "0"`).
Only vLLM preset sets get these objects (the EPP scores on vLLM's metrics), as in KAITO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from kaito.api import inferenceset, labels
from kaito.manifests import ownership

POOL_API_VERSION = "inference.networking.k8s.io/v1"
DEFAULT_EPP_IMAGE = "mcr.microsoft.com/oss/v2/llm-d/llm-d-router-endpoint-picker:v0.9.0"  # KAITO v0.12's
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
# On every object here, and what selects the picker's pods (never created-by: the pool must not select them).
LABEL_GATEWAY = "inferenceset.kaito.sh/gateway"
SERVER_PORT = 5000
EXT_PROC_PORT, HEALTH_PORT, METRICS_PORT = 9002, 9003, 9090
CONFIG_FILE = "default-plugins.yaml"
# The Gateway API Inference Extension's default scheduling: queue depth, KV-cache use and prefix-cache
# affinity, the last weighted highest (requests sharing a prompt prefix go where it is cached).
PLUGINS_CONFIG = {
    "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
    "kind": "EndpointPickerConfig",
    "plugins": [{"type": "queue-scorer"}, {"type": "kv-cache-utilization-scorer"}, {"type": "prefix-cache-scorer"}],
    "schedulingProfiles": [{"name": "default", "plugins": [
        {"pluginRef": "queue-scorer", "weight": 2},
        {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
        {"pluginRef": "prefix-cache-scorer", "weight": 3},
    ]}],
}


@dataclass(frozen=True, kw_only=True)
class GatewayInputs:
    inference_set: inferenceset.InferenceSet
    multi_node: bool = False  # children span nodes (StatefulSets): only pod 0 of each serves
    epp_image: str = DEFAULT_EPP_IMAGE


def wants_gateway(obj: inferenceset.InferenceSet, runtime: str) -> bool:
    """KAITO's condition: a vLLM preset set that no MultiRoleInference owns (it brings its own)."""
    preset = obj.spec.template.inference.preset
    return (runtime == labels.RUNTIME_VLLM and preset is not None
            and inferenceset.LABEL_MULTIROLE_PARENT not in (obj.metadata.labels or {}))


def pool_name(obj: inferenceset.InferenceSet) -> str:
    return f"{obj.name}-inferencepool"


def epp_name(obj: inferenceset.InferenceSet) -> str:
    return f"{pool_name(obj)}-epp"


def _metadata(obj: inferenceset.InferenceSet, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": obj.namespace,
        "labels": {LABEL_GATEWAY: obj.name},
        "ownerReferences": [{"apiVersion": inferenceset.STORAGE_API_VERSION, "kind": inferenceset.KIND,
                             "name": obj.name, "uid": obj.metadata.uid or ownership.PLACEHOLDER_UID,
                             "controller": True, "blockOwnerDeletion": True}],
    }


def build_inference_pool(inputs: GatewayInputs) -> dict[str, Any]:
    obj = inputs.inference_set
    selector = {inferenceset.LABEL_CREATED_BY: obj.name}
    if inputs.multi_node:
        selector[POD_INDEX_LABEL] = "0"
    return {
        "apiVersion": POOL_API_VERSION,
        "kind": "InferencePool",
        "metadata": _metadata(obj, pool_name(obj)),
        "spec": {
            "selector": {"matchLabels": selector},
            "targetPorts": [{"number": SERVER_PORT}],
            "endpointPickerRef": {"kind": "Service", "name": epp_name(obj), "port": {"number": EXT_PROC_PORT},
                                  "failureMode": "FailClose"},
        },
    }


def _epp_rbac(obj: inferenceset.InferenceSet) -> list[dict[str, Any]]:
    name = epp_name(obj)
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]},
        {"apiGroups": ["inference.networking.k8s.io"], "resources": ["inferencepools"],
         "verbs": ["get", "watch", "list"]},
        {"apiGroups": ["inference.networking.x-k8s.io"], "resources": ["inferenceobjectives", "inferencemodelrewrites"],
         "verbs": ["get", "watch", "list"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(obj, name)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _metadata(obj, name), "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _metadata(obj, name),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": obj.namespace}]},
    ]


def _epp_container(inputs: GatewayInputs) -> dict[str, Any]:
    obj = inputs.inference_set

    def probe() -> dict[str, Any]:
        return {"grpc": {"port": HEALTH_PORT, "service": "inference-extension"}, "initialDelaySeconds": 5,
                "periodSeconds": 10}

    return {
        "name": "epp",
        "image": inputs.epp_image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["--pool-name", pool_name(obj), "--pool-namespace", obj.namespace, "--zap-encoder", "json",
                 "--config-file", f"/config/{CONFIG_FILE}", "--secure-serving=false"],
        "ports": [{"name": "grpc", "containerPort": EXT_PROC_PORT}, {"name": "grpc-health", "containerPort": HEALTH_PORT},
                  {"name": "metrics", "containerPort": METRICS_PORT}],
        "livenessProbe": probe(),
        "readinessProbe": probe(),
        "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "16Gi"}},
        "volumeMounts": [{"name": "plugins-config", "mountPath": "/config"}],
    }


def build_epp_objects(inputs: GatewayInputs) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding, plugin ConfigMap, Service and Deployment of the picker."""
    obj = inputs.inference_set
    name, select = epp_name(obj), {LABEL_GATEWAY: obj.name}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(obj, name),
              "data": {CONFIG_FILE: yaml.safe_dump(PLUGINS_CONFIG, sort_keys=False)}}
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": _metadata(obj, name),
        "spec": {"type": "ClusterIP", "selector": dict(select), "ports": [
            {"name": "grpc-ext-proc", "port": EXT_PROC_PORT, "targetPort": EXT_PROC_PORT, "protocol": "TCP",
             "appProtocol": "http2"},
            {"name": "http-metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT, "protocol": "TCP"},
        ]},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(obj, name),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(select)},
            "template": {
                "metadata": {"labels": dict(select)},
                "spec": {
                    "serviceAccountName": name,
                    # As long as the longest grace period of the model servers it routes to.
                    "terminationGracePeriodSeconds": 130,
                    "containers": [_epp_container(inputs)],
                    "volumes": [{"name": "plugins-config", "configMap": {"name": name}}],
                },
            },
        },
    }
    return [*_epp_rbac(obj), config, service, deployment]


def build_gateway_objects(inputs: GatewayInputs) -> list[dict[str, Any]]:
    """The picker first, then the pool that names it."""
    return [*build_epp_objects(inputs), build_inference_pool(inputs)]
