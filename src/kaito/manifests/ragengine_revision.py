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


def plan_revision(obj: ragengine.RAGEngine, existing: Iterable[Mapping[str, Any]]) -> revisions.RevisionPlan:
    """Reuse the revision that records this spec, or make the next one and trim the oldest."""
    spec_hash = compute_spec_hash(obj)
    return revisions.plan_next_revision(
        obj.name, spec_hash, existing, hash_annotation=ragengine.ANNOTATION_HASH,
        build=lambda name, number: build_controller_revision(obj, spec_hash, number, name))
