"""The keyword side of hybrid retrieval: an incremental BM25 index, and BM25 sparse vectors for Qdrant.

Written here rather than taken from `bm25s` or LlamaIndex's `BM25Retriever` because both build a
static index: every append (bm25s precomputes idf-weighted scores, which change with each new
document) or, in KAITO, every query rebuilds it from all chunks. Here postings are appended as
chunks arrive and idf is computed at query time from live document frequencies, so indexing costs
O(new chunks) and a query O(postings of its terms). Deleted chunks are masked, then compacted away
once they outnumber the live ones.

Scoring is Okapi BM25 with k1 = 1.5, b = 0.75 and Lucene's non-negative idf
`ln(1 + (N - df + 0.5) / (df + 0.5))`. Tokens: lower-cased Unicode words minus English stop words
(no stemming, so "index" and "indexes" are different terms).
"""

from __future__ import annotations

import re
import zlib
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

K1 = 1.5
B = 0.75
# Qdrant sparse vectors: the tf part is computed here against a fixed average length (Qdrant applies
# idf itself with `Modifier.IDF`), as fastembed's BM25 does; 256 tokens is about one chunk.
QDRANT_AVG_LEN = 256.0

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves"])


def tokenize(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def _tf_weight(tf: np.ndarray | float, length: np.ndarray | float, avg_len: float):
    return tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avg_len))


def idf(n_docs: int, df: np.ndarray | int):
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


class BM25Index:
    """Chunks by integer id (the caller's); ids are never reused while the index lives."""

    def __init__(self) -> None:
        self._vocab: dict[str, int] = {}
        self._ids: list[array] = []  # per term: chunk ids holding it
        self._tfs: list[array] = []  # per term: term frequency in that chunk
        self._length = np.zeros(1024, dtype=np.float32)
        self._alive = np.zeros(1024, dtype=bool)
        self._n_alive = 0
        self._n_dead = 0
        self._total_length = 0.0

    def __len__(self) -> int:
        return self._n_alive

    def _grow(self, needed: int) -> None:
        if needed <= len(self._alive):
            return
        size = max(needed, 2 * len(self._alive))
        self._length = np.resize(self._length, size)
        self._length[len(self._alive):] = 0
        alive = np.zeros(size, dtype=bool)
        alive[: len(self._alive)] = self._alive
        self._alive = alive

    def add(self, ids: Sequence[int], texts: Iterable[str]) -> None:
        if len(ids):
            self._grow(max(ids) + 1)
        for chunk_id, text in zip(ids, texts, strict=True):
            counts = Counter(tokenize(text))
            for term, tf in counts.items():
                term_id = self._vocab.get(term)
                if term_id is None:
                    term_id = self._vocab[term] = len(self._ids)
                    self._ids.append(array("q"))
                    self._tfs.append(array("f"))
                self._ids[term_id].append(chunk_id)
                self._tfs[term_id].append(tf)
            length = float(sum(counts.values()))
            self._length[chunk_id] = length
            self._alive[chunk_id] = True
            self._n_alive += 1
            self._total_length += length

    def remove(self, ids: Iterable[int]) -> None:
        for chunk_id in ids:
            if chunk_id < len(self._alive) and self._alive[chunk_id]:
                self._alive[chunk_id] = False
                self._n_alive -= 1
                self._n_dead += 1
                self._total_length -= float(self._length[chunk_id])
        if self._n_dead > max(1024, self._n_alive):
            self._compact()

    def _compact(self) -> None:
        for term_id, (ids, tfs) in enumerate(zip(self._ids, self._tfs, strict=True)):
            id_arr = np.frombuffer(ids, dtype=np.int64)
            keep = self._alive[id_arr]
            self._ids[term_id] = array("q", id_arr[keep].tobytes())
            self._tfs[term_id] = array("f", np.frombuffer(tfs, dtype=np.float32)[keep].tobytes())
        self._n_dead = 0

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The best `k` chunks with a positive score, best first; `allowed` is a sorted array of ids."""
        if self._n_alive == 0 or k <= 0:
            return []
        avg_len = self._total_length / self._n_alive if self._total_length > 0 else 1.0
        scores = np.zeros(len(self._alive), dtype=np.float32)
        for term in set(tokenize(query)):
            term_id = self._vocab.get(term)
            if term_id is None:
                continue
            ids = np.frombuffer(self._ids[term_id], dtype=np.int64)
            tfs = np.frombuffer(self._tfs[term_id], dtype=np.float32)
            live = self._alive[ids]
            ids, tfs = ids[live], tfs[live]
            if not len(ids):
                continue
            scores[ids] += idf(self._n_alive, len(ids)) * _tf_weight(tfs, self._length[ids], avg_len)
        candidates = np.flatnonzero(scores > 0)
        if allowed is not None:
            candidates = candidates[np.isin(candidates, allowed, assume_unique=True)]
        if len(candidates) > k:
            part = np.argpartition(-scores[candidates], k - 1)[:k]
            candidates = candidates[part]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(int(i), float(scores[i])) for i in order]


def _term_index(term: str) -> int:
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


def build_sparse_document(text: str) -> tuple[list[int], list[float]]:
    """Qdrant sparse vector of a chunk: hashed terms → BM25 tf weight (Qdrant multiplies by idf)."""
    counts = Counter(tokenize(text))
    length = float(sum(counts.values())) or 1.0
    merged: dict[int, float] = {}
    for term, tf in counts.items():
        index = _term_index(term)
        merged[index] = merged.get(index, 0.0) + float(_tf_weight(tf, length, QDRANT_AVG_LEN))
    return list(merged), list(merged.values())


def build_sparse_query(text: str) -> tuple[list[int], list[float]]:
    indices = sorted({_term_index(t) for t in tokenize(text)})
    return indices, [1.0] * len(indices)

