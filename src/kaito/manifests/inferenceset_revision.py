"""InferenceSet revisions (kaito-v0.12.md §3.3): the spec hash, ControllerRevisions, and which to keep.

As KAITO: sha256 of the spec encoded as Go's JSON encoder would, a ControllerRevision `<set>-<hash[:5]>`
labelled `inferenceset.kaito.io/name` and annotated `inferenceset.kaito.io/hash`, holding the spec,
ten kept; the set carries the number in `inferenceset.kaito.io/revision`. Two deliberate differences:
`spec.replicas` is left out of the hash (KAITO hashes it, so every `kubectl scale` and every
autoscaler step made a new revision and pushed the real template changes out of the ten kept; a
revision here records what the replicas run, as a StatefulSet's do), and a name already taken by
another hash is lengthened (`kaito.manifests.revision`) instead of wedging the set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kaito.api import inferenceset
from kaito.manifests import ownership
from kaito.manifests import revision as revisions


def _hashed_spec(obj: inferenceset.InferenceSet) -> inferenceset.InferenceSetSpec:
    return obj.spec.model_copy(update={"replicas": None})


def compute_spec_hash(obj: inferenceset.InferenceSet) -> str:
    return revisions.compute_go_json_hash(_hashed_spec(obj))


def build_controller_revision(obj: inferenceset.InferenceSet, spec_hash: str, number: int,
                              name: str) -> dict[str, Any]:
    owner = {"apiVersion": inferenceset.STORAGE_API_VERSION, "kind": inferenceset.KIND, "name": obj.name,
             "uid": obj.metadata.uid or ownership.PLACEHOLDER_UID, "controller": True, "blockOwnerDeletion": True}
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": name, "namespace": obj.namespace,
                     "labels": {inferenceset.LABEL_REVISION_NAME: obj.name},
                     "annotations": {inferenceset.ANNOTATION_HASH: spec_hash},
                     "ownerReferences": [owner]},
        "data": {"spec": _hashed_spec(obj).model_dump(mode="json", by_alias=True, exclude_none=True)},
        "revision": number,
    }


def plan_revision(obj: inferenceset.InferenceSet, existing: Iterable[Mapping[str, Any]]) -> revisions.RevisionPlan:
    """Reuse the revision that records this spec, or make the next one and trim the oldest."""
    spec_hash = compute_spec_hash(obj)
    return revisions.plan_next_revision(
        obj.name, spec_hash, existing, hash_annotation=inferenceset.ANNOTATION_HASH,
        build=lambda name, number: build_controller_revision(obj, spec_hash, number, name))
