"""Who owns an object and how it is found again: owner references, common labels, metadata.

Every namespaced object a Workspace makes carries a controller owner reference to it (so Kubernetes
garbage collection removes them with the Workspace) and the `kaito.sh/workspace` label (so pods are
selected and the controller's watches map events back to the Workspace). Cluster-scoped NodeClaims
cannot be owned by a namespaced object; they carry both workspace labels instead (§3.1 step 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaito.api import conversion, inferenceset, labels
from kaito.api.hub import Workspace

# Builders never emit an empty uid: an owner reference without one is rejected by the API server,
# and `kaito render` runs before the Workspace exists. The controller always passes the stored
# object (which has a uid); render output states this placeholder so a reviewer sees it.
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The object that owns what a builder makes, as resolved values (builders that take no Workspace)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str | None = None


def owner_of(ws: Workspace) -> Owner:
    """`ws` as an owner, in the storage version like `build_owner_reference`."""
    return Owner(api_version=conversion.STORAGE_VERSION, kind=conversion.KIND, name=ws.name,
                 namespace=ws.namespace, uid=ws.metadata.uid)


def build_owner_reference_to(owner: Owner) -> dict[str, Any]:
    """The controller owner reference to `owner` (§10 note 16)."""
    return {"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name,
            "uid": owner.uid or PLACEHOLDER_UID, "controller": True, "blockOwnerDeletion": True}


def build_owner_reference(ws: Workspace) -> dict[str, Any]:
    """The controller owner reference to `ws` (§10 note 16), in the storage version: the same object
    whichever version the Workspace was written in (garbage collection goes by uid anyway)."""
    return {
        "apiVersion": conversion.STORAGE_VERSION,
        "kind": conversion.KIND,
        "name": ws.name,
        "uid": ws.metadata.uid or PLACEHOLDER_UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _set_label(ws: Workspace) -> dict[str, str]:
    """An InferenceSet child's `inferenceset.kaito.sh/created-by`, carried down to its pods as KAITO
    does: the set's InferencePool and autoscaler find the serving pods by it."""
    value = (ws.metadata.labels or {}).get(inferenceset.LABEL_CREATED_BY)
    return {inferenceset.LABEL_CREATED_BY: value} if value else {}


def build_selector_labels(ws: Workspace) -> dict[str, str]:
    """Labels that select this Workspace's pods (KAITO selects on the workspace name alone, plus
    the set's label for an InferenceSet child)."""
    return {labels.LABEL_WORKSPACE_NAME: ws.name, **_set_label(ws)}


def build_workspace_labels(ws: Workspace) -> dict[str, str]:
    """Labels on every object made for `ws`: name and namespace, so cluster-scoped ones map back."""
    return {
        labels.LABEL_WORKSPACE_NAME: ws.name,
        labels.LABEL_WORKSPACE_NAMESPACE: ws.namespace,
        **_set_label(ws),
    }


def build_metadata(
    ws: Workspace,
    name: str,
    *,
    extra_labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Metadata of a namespaced object owned by `ws`."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ws.namespace,
        "labels": {**build_workspace_labels(ws), **dict(extra_labels or {})},
        "ownerReferences": [build_owner_reference(ws)],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def build_revision_annotations(revision: int | str | None) -> dict[str, str]:
    """`workspace.kaito.io/revision` as KAITO writes it; none when the revision is not known yet."""
    if revision is None:
        return {}
    return {labels.ANNOTATION_REVISION: str(revision)}


def placement_labels(ws: Workspace) -> dict[str, str]:
    """The node labels the Workspace's pods and NodeClaims require: the user's `matchLabels`
    (KAITO ignores matchExpressions for placement).

    Keys KAITO reserves for its own bookkeeping (`kaito.sh/workspace`, …) are dropped, as KAITO
    v0.12 does: a NodeClaim carries our value for them, so requiring the user's value would leave
    pods unschedulable on the very nodes made for them.
    """
    if ws.resource is None or ws.resource.label_selector.match_labels is None:
        return {}
    return {
        k: v for k, v in ws.resource.label_selector.match_labels.items() if k not in labels.RESERVED_SELECTOR_KEYS
    }
