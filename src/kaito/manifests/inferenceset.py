"""The child Workspaces of an InferenceSet (kaito-v0.12.md §3.3), as `kaito.sh/v1beta1` objects.

What a child holds is decided in `kaito.api.inferenceset.build_child_workspace` (admission judges
that very Workspace); this module renders it as the object the controller creates: a v1beta1
Workspace with KAITO's labels (`inferenceset.kaito.sh/created-by`, which also makes its pods serve
the model under the set's name), the template's annotations, `resource.labelSelector` from the
set, and a controller owner reference to the set, so deleting the set deletes its children.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kaito.api import conversion, inferenceset
from kaito.manifests import ownership

CHILD_API_VERSION = conversion.STORAGE_VERSION


@dataclass(frozen=True, kw_only=True)
class InferenceSetInputs:
    inference_set: inferenceset.InferenceSet
    auto_provisioning: bool = True  # False: bring-your-own nodes (children get no instanceType)


def build_child_workspace(inputs: InferenceSetInputs, name: str | None = None) -> dict[str, Any]:
    """One child: named `name`, or `generateName: <set>-` (KAITO's way) when None.

    A set not yet stored has no uid: its owner reference carries the placeholder uid that
    `kaito render` shows for every owner not yet created.
    """
    child = inferenceset.build_child_workspace(inputs.inference_set, auto_provisioning=inputs.auto_provisioning,
                                               name=name)
    out = conversion.to_wire(child, CHILD_API_VERSION)
    for ref in out["metadata"].get("ownerReferences", []):
        ref["uid"] = ref.get("uid") or ownership.PLACEHOLDER_UID
    return out


def build_child_workspaces(inputs: InferenceSetInputs, names: Sequence[str | None]) -> list[dict[str, Any]]:
    """One child per name (None entries are generated names); the controller decides how many."""
    return [build_child_workspace(inputs, name) for name in names]


def build_replica_names(inputs: InferenceSetInputs) -> list[str | None]:
    """`spec.replicas` generated names: what a render of a new set shows."""
    return [None] * (inputs.inference_set.spec.replicas if inputs.inference_set.spec.replicas is not None
                     else inferenceset.DEFAULT_REPLICAS)
