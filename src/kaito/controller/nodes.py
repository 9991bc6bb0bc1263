"""Which nodes a Workspace runs on, and which NodeClaims are missing (reference §3.1 b–d).

Pure: given the nodes and NodeClaims observed, it answers which Ready nodes to use and how many
NodeClaims to create, with their names. KAITO named NodeClaims from a timestamp, so a controller
that crashed between "create" and "record" created another one on restart (its most reported
bug). Here a NodeClaim's name is derived from the Workspace and a slot number, and the slots in
use are read from the NodeClaims that exist (a label query): a restarted controller computes the
same names, and creating one that already exists is a harmless conflict, never a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaito.api import labels
from kaito.manifests.nodeclaim import build_nodeclaim_name

LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
LABEL_INSTANCE_TYPE_BETA = "beta.kubernetes.io/instance-type"
# GPU Feature Discovery labels: how a BYO node says it has GPUs without a known instance type.
GPU_NODE_LABELS = ("nvidia.com/gpu.product", "nvidia.com/gpu.count")
GPU_RESOURCE = "nvidia.com/gpu"

Object = Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class NodeRequest:
    """What the Workspace asks for, taken from `resource`."""

    namespace: str
    name: str
    count: int
    instance_type: str | None
    match_labels: Mapping[str, str]
    preferred: frozenset[str] = frozenset()
    previous: frozenset[str] = frozenset()  # status.workerNodes of the last reconcile


@dataclass(frozen=True, kw_only=True)
class NodeSelection:
    selected: tuple[str, ...]  # names of the chosen Ready nodes, in preference order
    claims_in_flight: tuple[str, ...]  # our NodeClaims whose node is not (yet) usable
    claims_failed: tuple[tuple[str, str], ...]  # (name, message) of claims that failed to launch
    claims_to_create: tuple[str, ...]  # deterministic names of the NodeClaims still missing


def _labels(obj: Object) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _name(obj: Object) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def _deleting(obj: Object) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _condition(obj: Object, type_: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_node_ready(node: Object) -> bool:
    cond = _condition(node, "Ready")
    return cond is not None and cond.get("status") == "True" and not _deleting(node)


def instance_type_of(node: Object) -> str | None:
    node_labels = _labels(node)
    return node_labels.get(LABEL_INSTANCE_TYPE) or node_labels.get(LABEL_INSTANCE_TYPE_BETA)


def has_gpu_labels(node: Object) -> bool:
    """A BYO node advertises GPUs by GFD labels or a non-zero `nvidia.com/gpu` capacity."""
    if any(key in _labels(node) for key in GPU_NODE_LABELS):
        return True
    capacity = (node.get("status") or {}).get("capacity") or {}
    try:
        return int(str(capacity.get(GPU_RESOURCE, "0"))) > 0
    except ValueError:
        return False


def is_provisioned(node: Object) -> bool:
    node_labels = _labels(node)
    return labels.LABEL_MACHINE_TYPE in node_labels or labels.LABEL_KARPENTER_NODEPOOL in node_labels


def matches_labels(obj: Object, match_labels: Mapping[str, str]) -> bool:
    obj_labels = _labels(obj)
    return all(obj_labels.get(k) == v for k, v in match_labels.items())


def qualifies(node: Object, request: NodeRequest, *, byo: bool) -> bool:
    """§3.1 b: Ready, not deleting, has the matchLabels, and is preferred or of the right kind.

    A preferred node is used whatever its instance type (KAITO fix #618). In BYO mode there is no
    instance type to insist on: a node that advertises GPUs is of the right kind.
    """
    if not is_node_ready(node) or not matches_labels(node, request.match_labels):
        return False
    if _name(node) in request.preferred:
        return True
    if request.instance_type and instance_type_of(node) == request.instance_type:
        return True
    return byo and has_gpu_labels(node)


def compute_node_order(node: Object, request: NodeRequest) -> tuple[bool, bool, bool, str]:
    """Sort key of §3.1 c: preferred, then previously chosen, then provisioned, then by name."""
    name = _name(node)
    return (
        name not in request.preferred,
        name not in request.previous,
        not is_provisioned(node),
        name,
    )


def is_nodeclaim_ready(claim: Object) -> bool:
    cond = _condition(claim, "Ready")
    return cond is not None and cond.get("status") == "True"


def nodeclaim_failure(claim: Object) -> str | None:
    """The launch failure message of a NodeClaim (`Launched=False`), or None."""
    cond = _condition(claim, "Launched")
    if cond is not None and cond.get("status") == "False":
        return cond.get("message") or cond.get("reason") or "launch failed"
    return None


def plan_nodes(
    request: NodeRequest,
    nodes: Iterable[Object],
    claims: Sequence[Object],
    *,
    provision: bool,
) -> NodeSelection:
    """Choose nodes and compute the NodeClaims to create (none when `provision` is False: BYO)."""
    qualified = sorted(
        (n for n in nodes if qualifies(n, request, byo=not provision)),
        key=lambda n: compute_node_order(n, request),
    )
    selected = tuple(_name(n) for n in qualified[: request.count])
    if not provision:
        return NodeSelection(selected=selected, claims_in_flight=(), claims_failed=(), claims_to_create=())

    selected_set = set(selected)
    in_flight: list[str] = []
    failed: list[tuple[str, str]] = []
    for claim in sorted(claims, key=_name):
        if _deleting(claim):
            continue
        node_name = (claim.get("status") or {}).get("nodeName")
        if node_name in selected_set:
            continue
        failure = nodeclaim_failure(claim)
        if failure is not None:
            # A failed launch (no capacity, quota) is not retried by creating more claims: that
            # is how KAITO leaked NodeClaims. It stays visible in the conditions instead.
            failed.append((_name(claim), failure))
        else:
            in_flight.append(_name(claim))

    missing = request.count - len(selected) - len(in_flight) - len(failed)
    used = {_name(c) for c in claims}  # deleting claims keep their name until they are gone
    to_create: list[str] = []
    slot = 0
    while len(to_create) < missing:
        candidate = build_nodeclaim_name(request.namespace, request.name, slot)
        if candidate not in used:
            to_create.append(candidate)
        slot += 1
    return NodeSelection(selected=selected, claims_in_flight=tuple(in_flight), claims_failed=tuple(failed),
                         claims_to_create=tuple(to_create))
