"""The scale subresource (`/scale`, an `autoscaling/v1` Scale) of the kinds that have one.

`kubectl scale`, KEDA's HPA and our local autoscaler change a workload's size through this
subresource rather than by writing the object: they touch `spec.replicas` and nothing else, under
their own field manager, so they never take over (or remove) the fields `kaito apply` or the
controller own. The InferenceSet CRD declares it (`specReplicasPath .spec.replicas`,
`statusReplicasPath .status.replicas`, `labelSelectorPath .status.selector`), as Deployments and
StatefulSets have it built in.

A backend that is its own API server (the local store, the tests' API emulator) answers from
these pure helpers; `KubeCluster` sends the real request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaito.cluster import errors
from kaito.cluster.protocol import Object, ResourceKind

SCALE_API_VERSION = "autoscaling/v1"
# (API group, kind) of the kinds with a scale subresource.
SCALABLE: frozenset[tuple[str, str]] = frozenset({
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("kaito.sh", "InferenceSet"),
})


def has_scale(kind: ResourceKind) -> bool:
    return (kind.group, kind.kind) in SCALABLE


def check_request(kind: ResourceKind, name: str, replicas: int) -> None:
    """`NotFound` for a kind without the subresource (the API server's 404), `Invalid` for a bad count."""
    if not has_scale(kind):
        raise errors.NotFound(f"{kind.kind} has no scale subresource")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise errors.Invalid(f"{kind.kind} {name}: spec.replicas must be a whole number, 0 or more, got {replicas!r}")


def _selector_text(obj: Mapping[str, Any]) -> str:
    """The label query the Scale reports: `.status.selector` for a custom kind (its labelSelectorPath),
    `spec.selector.matchLabels` written out for Deployments and StatefulSets."""
    if obj.get("kind") not in ("Deployment", "StatefulSet"):
        return str((obj.get("status") or {}).get("selector") or "")
    match = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(match.items()))


def build_scale(obj: Mapping[str, Any]) -> Object:
    """The `autoscaling/v1` Scale of a stored object."""
    meta = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    out_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta}
    scale: Object = {"apiVersion": SCALE_API_VERSION, "kind": "Scale", "metadata": out_meta,
                     "spec": {"replicas": int(spec.get("replicas") or 0)},
                     "status": {"replicas": int(status.get("replicas") or 0)}}
    selector = _selector_text(obj)
    if selector:
        scale["status"]["selector"] = selector
    return scale


def update_manager(field_manager: str) -> str:
    """The ownership entry a scale write is kept under. Kubernetes keeps managedFields per manager
    *and operation*: a scale is an update, so a manager that also applies the object (`kubectl
    apply` then `kubectl scale`) keeps its applied fields; the update never stands for its intent."""
    return f"{field_manager} (update)"


def build_replicas_intent(obj: Mapping[str, Any], replicas: int) -> Object:
    """What a scale write applies to the object: `spec.replicas` alone, as its writer's whole intent."""
    meta = obj.get("metadata") or {}
    ident = {k: meta[k] for k in ("name", "namespace") if k in meta}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": ident,
            "spec": {"replicas": replicas}}
