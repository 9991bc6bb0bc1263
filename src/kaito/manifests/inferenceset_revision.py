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


def _hash_of(rev: Mapping[str, Any]) -> str | None:
    return ((rev.get("metadata") or {}).get("annotations") or {}).get(inferenceset.ANNOTATION_HASH)


def plan_revision(obj: inferenceset.InferenceSet, existing: Iterable[Mapping[str, Any]]) -> revisions.RevisionPlan:
    """Reuse the revision that records this spec, or make the next one and trim the oldest."""
    ordered = sorted(existing, key=lambda r: int(r.get("revision") or 0))
    spec_hash = compute_spec_hash(obj)
    for rev in ordered:
        if _hash_of(rev) == spec_hash:
            return revisions.RevisionPlan(spec_hash=spec_hash, name=rev["metadata"]["name"],
                                          number=int(rev.get("revision") or 0), create=None, delete=())
    name = revisions.free_revision_name(obj.name, spec_hash, {r["metadata"]["name"] for r in ordered})
    number = (int(ordered[-1].get("revision") or 0) + 1) if ordered else 1
    overflow = max(0, len(ordered) + 1 - revisions.MAX_REVISION_HISTORY)
    return revisions.RevisionPlan(spec_hash=spec_hash, name=name, number=number,
                                  create=build_controller_revision(obj, spec_hash, number, name),
                                  delete=tuple(r["metadata"]["name"] for r in ordered[:overflow]))
