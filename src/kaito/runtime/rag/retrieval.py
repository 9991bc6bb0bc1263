"""Hybrid retrieval: the dense and BM25 sides fused by reciprocal rank (RRF), normalised to [0, 1].

Why RRF: a cosine similarity and a BM25 score live on different scales (BM25 is unbounded and
grows with the corpus), so adding them — or KAITO's 0.7 × L2 distance + 0.3 / (1 + BM25 rank),
which adds a lower-is-better distance to a higher-is-better rank score — ranks by accident. RRF
uses only each side's ranking: `Σ_side 1 / (k + rank_side)` with k = 60 (Cormack et al., 2009; the
fusion KAITO's documentation promises, and Qdrant's and Elasticsearch's default), robust with no
tuning. We divide by the best possible value, `2 / (k + 1)`, so `score` reads as a fraction:
1.0 = ranked first by both sides, 0.5 = ranked first by one side only; results are sorted by it.
Each result also carries what each side said, in its own unit: `dense_score` (cosine similarity,
-1..1) and `sparse_score` (BM25), plus `source` (`both`, `dense_only`, `sparse_only`).

Each side contributes a candidate pool of 3 × the requested count, as KAITO's retriever does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kaito.runtime.rag.store import Found

RRF_K = 60
POOL_FACTOR = 3


@dataclass(frozen=True, kw_only=True)
class Fused:
    node_id: str
    doc_id: str
    text: str
    metadata: dict[str, Any]
    score: float
    dense_score: float | None
    sparse_score: float | None
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "node_id": self.node_id, "text": self.text, "score": self.score,
                "dense_score": self.dense_score, "sparse_score": self.sparse_score, "source": self.source,
                "metadata": self.metadata or None}


def rrf_term(rank: int) -> float:
    """One side's contribution for a 1-based rank, before normalisation."""
    return 1.0 / (RRF_K + rank)


def fuse(dense: list[Found], sparse: list[Found], top_k: int) -> list[Fused]:
    """Fuse two best-first lists into the best `top_k` by normalised RRF (pure)."""
    best = 2 * rrf_term(1)
    dense_rank = {f.node_id: (r, f) for r, f in enumerate(dense, start=1)}
    sparse_rank = {f.node_id: (r, f) for r, f in enumerate(sparse, start=1)}
    fused: list[Fused] = []
    for node_id in dense_rank.keys() | sparse_rank.keys():
        d, s = dense_rank.get(node_id), sparse_rank.get(node_id)
        raw = (rrf_term(d[0]) if d else 0.0) + (rrf_term(s[0]) if s else 0.0)
        found = (d or s)[1]  # type: ignore[index]
        fused.append(Fused(node_id=node_id, doc_id=found.doc_id, text=found.text, metadata=found.metadata,
                           score=raw / best, dense_score=d[1].score if d else None,
                           sparse_score=s[1].score if s else None,
                           source="both" if d and s else "dense_only" if d else "sparse_only"))
    # ties (same ranks) go to the higher cosine similarity, then the stable node id
    fused.sort(key=lambda f: (-f.score, -(f.dense_score if f.dense_score is not None else -2.0), f.node_id))
    return fused[:top_k]
