"""RAGEngine revisions (kaito-v0.12.md §4.2): the spec hash, ControllerRevisions, and which to keep.

As KAITO does: sha256 of the spec encoded as Go's JSON encoder would, a ControllerRevision
`<rag>-<hash[:5]>` labelled `ragengine.kaito.io/name`, annotated `ragengine.kaito.io/hash`, holding the
spec; the RAGEngine and its Deployment carry the number in `ragengine.kaito.io/revision`. Unlike KAITO,
a name already taken by another hash is lengthened (`kaito.manifests.revision`), not a wedged engine,
and history is trimmed to the same ten revisions Workspaces keep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kaito.api import ragengine
from kaito.manifests import ragengine as rag_manifests
from kaito.manifests import revision as revisions


def compute_spec_hash(obj: ragengine.RAGEngine) -> str:
    return revisions.compute_go_json_hash(obj.spec)


def build_controller_revision(obj: ragengine.RAGEngine, spec_hash: str, number: int, name: str) -> dict[str, Any]:
    meta = rag_manifests.build_metadata(obj, annotations={ragengine.ANNOTATION_HASH: spec_hash})
    meta["name"] = name
    meta["labels"] = {**meta["labels"], ragengine.LABEL_REVISION_NAME: obj.name}
    spec = obj.spec.model_dump(mode="json", by_alias=True, exclude_none=True) if obj.spec is not None else None
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta, "data": spec, "revision": number}


def _hash_of(rev: Mapping[str, Any]) -> str | None:
    return ((rev.get("metadata") or {}).get("annotations") or {}).get(ragengine.ANNOTATION_HASH)


def plan_revision(obj: ragengine.RAGEngine, existing: Iterable[Mapping[str, Any]]) -> revisions.RevisionPlan:
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
