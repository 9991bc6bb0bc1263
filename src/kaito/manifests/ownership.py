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

from kaito.api import labels
from kaito.api.v1alpha1 import Workspace

# Builders never emit an empty uid: an owner reference without one is rejected by the API server,
# and `kaito render` runs before the Workspace exists. The controller always passes the stored
# object (which has a uid); render output states this placeholder so a reviewer sees it.
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The object that owns what a builder makes, resolved (whatever served version it came in)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str | None = None


def owner_of(ws: Workspace) -> Owner:
    return Owner(api_version=ws.api_version, kind=ws.kind, name=ws.name, namespace=ws.namespace,
                 uid=ws.metadata.uid)


def build_owner_reference_to(owner: Owner) -> dict[str, Any]:
    """The controller owner reference to `owner` (§10 note 16)."""
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.name,
        "uid": owner.uid or PLACEHOLDER_UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_owner_reference(ws: Workspace) -> dict[str, Any]:
    """The controller owner reference to `ws` (§10 note 16)."""
    return build_owner_reference_to(owner_of(ws))


def build_selector_labels(ws: Workspace) -> dict[str, str]:
    """Labels that select this Workspace's pods (KAITO selects on the workspace name alone)."""
    return {labels.LABEL_WORKSPACE_NAME: ws.name}


def build_workspace_labels(ws: Workspace) -> dict[str, str]:
    """Labels on every object made for `ws`: name and namespace, so cluster-scoped ones map back."""
    return {
        labels.LABEL_WORKSPACE_NAME: ws.name,
        labels.LABEL_WORKSPACE_NAMESPACE: ws.namespace,
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


def match_labels_of(ws: Workspace) -> dict[str, str]:
    """The user's node `matchLabels` (KAITO ignores matchExpressions for placement).

    Keys KAITO reserves for its own bookkeeping (`kaito.sh/workspace`, …) are dropped, as KAITO
    v0.12 does: a NodeClaim carries our value for them, so requiring the user's value would leave
    pods unschedulable on the very nodes made for them.
    """
    if ws.resource is None or ws.resource.label_selector.match_labels is None:
        return {}
    return {
        k: v for k, v in ws.resource.label_selector.match_labels.items() if k not in labels.RESERVED_SELECTOR_KEYS
    }
