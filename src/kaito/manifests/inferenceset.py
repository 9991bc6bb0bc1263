"""The child Workspaces of an InferenceSet (kaito-v0.12.md §3.3), as `kaito.sh/v1beta1` objects.

What a child holds is decided in `kaito.api.inferenceset.build_child_workspace` (admission judges
that very Workspace); this module renders it as the object the controller creates: a v1beta1
Workspace with KAITO's labels (`inferenceset.kaito.sh/created-by`, which also makes its pods serve
the model under the set's name), the template's annotations, `resource.labelSelector` from the
set, and a controller owner reference to the set, so deleting the set deletes its children. The
controller's children are named from the set's uid and a replica ordinal (`compute_child_name`);
`kaito render` shows KAITO's `generateName`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kaito.api import conversion, inferenceset
from kaito.manifests import ownership

CHILD_API_VERSION = conversion.STORAGE_VERSION
# Which replica a child is: the ordinal its name was made from (see `compute_child_name`).
ANNOTATION_REPLICA = "inferenceset.kaito.sh/replica"
# Kubernetes' generateName: the prefix cut to 58 characters, then 5 from this alphabet (no vowels,
# no look-alikes), so a name made here reads like one KAITO's API server would give.
GENERATE_NAME_PREFIX_MAX = 58
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX_LENGTH = 5


def compute_child_name(set_name: str, set_uid: str, ordinal: int) -> str:
    """The name of replica `ordinal` of the set with this uid: `<set>-xxxxx`, like KAITO's generateName,
    but a function of (uid, ordinal) instead of random.

    Why not random: every write is a server-side apply, so a name that can be computed again makes
    creating a child idempotent. A controller restarted after any write, a request retried after
    its answer was lost, or a replica that lost its Lease finishing a reconcile while the new leader
    runs one: all of them create the *same* child for a replica, never a second one (with random
    names two controllers reading one child and wanting three make five). The set's uid makes the
    names of a set deleted and created again under the same name differ, so its children never
    adopt, or collide with, the old set's children still being deleted.
    """
    prefix = f"{set_name}-"[:GENERATE_NAME_PREFIX_MAX]
    digest = hashlib.sha256(f"{set_uid}/{ordinal}".encode()).digest()
    return prefix + "".join(NAME_ALPHABET[b % len(NAME_ALPHABET)] for b in digest[:SUFFIX_LENGTH])


@dataclass(frozen=True, kw_only=True)
class InferenceSetInputs:
    inference_set: inferenceset.InferenceSet
    auto_provisioning: bool = True  # False: bring-your-own nodes (children get no instanceType)


def build_child_workspace(inputs: InferenceSetInputs, name: str | None = None,
                          ordinal: int | None = None) -> dict[str, Any]:
    """One child: named `name`, or `generateName: <set>-` (KAITO's way) when None; the controller's
    children also record their `ordinal` (annotation `inferenceset.kaito.sh/replica`).

    A set not yet stored has no uid: its owner reference carries the placeholder uid that
    `kaito render` shows for every owner not yet created.
    """
    child = inferenceset.build_child_workspace(inputs.inference_set, auto_provisioning=inputs.auto_provisioning,
                                               name=name)
    out = conversion.to_wire(child, CHILD_API_VERSION)
    for ref in out["metadata"].get("ownerReferences", []):
        ref["uid"] = ref.get("uid") or ownership.PLACEHOLDER_UID
    if ordinal is not None:
        out["metadata"]["annotations"] = {**(out["metadata"].get("annotations") or {}),
                                          ANNOTATION_REPLICA: str(ordinal)}
    return out


def build_named_child(inputs: InferenceSetInputs, ordinal: int) -> dict[str, Any]:
    """Replica `ordinal` as the controller creates it (its name from `compute_child_name`)."""
    obj = inputs.inference_set
    name = compute_child_name(obj.name, obj.metadata.uid or ownership.PLACEHOLDER_UID, ordinal)
    return build_child_workspace(inputs, name, ordinal)


def build_child_workspaces(inputs: InferenceSetInputs, names: Sequence[str | None]) -> list[dict[str, Any]]:
    """One child per name (None entries are generated names); the controller decides how many."""
    return [build_child_workspace(inputs, name) for name in names]


def build_replica_names(inputs: InferenceSetInputs) -> list[str | None]:
    """`spec.replicas` generated names: what a render of a new set shows."""
    return [None] * (inputs.inference_set.spec.replicas if inputs.inference_set.spec.replicas is not None
                     else inferenceset.DEFAULT_REPLICAS)
