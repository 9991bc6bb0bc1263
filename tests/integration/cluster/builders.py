"""Factories for the small objects the cluster tests apply."""

from __future__ import annotations

from typing import Any


def make_deployment(name: str = "ws", **overrides: Any) -> dict[str, Any]:
    """A small Deployment dict; `labels`, `replicas`, `namespace`, `finalizers`, `owner` override."""
    meta: dict[str, Any] = {"name": name, "namespace": overrides.get("namespace", "default"),
                            "labels": overrides.get("labels", {"kaito.sh/workspace": name})}
    if "finalizers" in overrides:
        meta["finalizers"] = overrides["finalizers"]
    if "owner" in overrides:
        owner = overrides["owner"]
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": overrides.get("replicas", 1),
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": name, "image": "kaito/runtime:0.1",
                                                  "args": overrides.get("args", ["--port", "5000"])}]}},
        },
    }


def make_workspace(name: str) -> dict:
    return {"apiVersion": "kaito.sh/v1alpha1", "kind": "Workspace", "metadata": {"name": name},
            "resource": {"labelSelector": {"matchLabels": {"apps": name}}}}


def make_service(name: str, *owners: dict) -> dict:
    refs = [{"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"]} for o in owners]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "ownerReferences": refs},
            "spec": {"ports": [{"port": 80, "targetPort": 5000}]}}
