"""Prometheus metrics at `/metrics` under KAITO v0.12's names, so its RAG dashboards work unchanged.

Per endpoint, with label `status` = success | failure (any 4xx/5xx): `<op>_requests_total` and
`<op>_latency_seconds` for op in rag_index, rag_indexes, rag_indexes_document,
rag_indexes_update_document, rag_indexes_delete_document, rag_delete_index, rag_persist, rag_load,
rag_indexes_retrieve, rag_chat. Across them: `e2e_request_total{status}`,
`e2e_request_latency_seconds{status}`, `num_requests_running`. Embedding:
`rag_embedding_requests_total{status,mode}`, `rag_embedding_latency_seconds{status,mode}`.
Retrieval: `rag_retrieve_result_count`, `rag_hybrid_search_mode_total{search_mode}`,
`rag_hybrid_retrieve_latency_seconds`, `rag_hybrid_top_score`, `rag_hybrid_dense_candidates`,
`rag_hybrid_sparse_candidates`, `rag_hybrid_overlap_count`, `rag_hybrid_dense_only_count`,
`rag_hybrid_sparse_only_count`. KAITO's `rag_lowest_source_score`/`rag_avg_source_score` described
L2 distances and its guardrail counters a feature not built here, so they are left out.
A private registry per app keeps several apps in one process (tests) apart.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kaito.runtime.rag.retrieval import Fused

# (method, route path) -> KAITO's metric prefix
ROUTE_OPS = {
    ("POST", "/index"): "rag_index",
    ("GET", "/indexes"): "rag_indexes",
    ("GET", "/indexes/{index_name}/documents"): "rag_indexes_document",
    ("POST", "/indexes/{index_name}/documents"): "rag_indexes_update_document",
    ("POST", "/indexes/{index_name}/documents/delete"): "rag_indexes_delete_document",
    ("DELETE", "/indexes/{index_name}"): "rag_delete_index",
    ("POST", "/persist/{index_name}"): "rag_persist",
    ("POST", "/load/{index_name}"): "rag_load",
    ("POST", "/retrieve"): "rag_indexes_retrieve",
    ("POST", "/v1/chat/completions"): "rag_chat",
}
_COUNTS = (0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 300)
_SCORES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RagMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = {op: Counter(f"{op}_requests", f"Count of successful/failed {op} requests", ["status"],
                                     registry=r) for op in ROUTE_OPS.values()}
        self.latency = {op: Histogram(f"{op}_latency_seconds", f"Latency of {op} requests in seconds", ["status"],
                                      registry=r) for op in ROUTE_OPS.values()}
        self.e2e_total = Counter("e2e_request", "Total number of all processed requests", ["status"], registry=r)
        self.e2e_latency = Histogram("e2e_request_latency_seconds", "End to end request latency in seconds",
                                     ["status"], registry=r)
        self.running = Gauge("num_requests_running", "Number of requests currently being processed", registry=r)
        self.embed_total = Counter("rag_embedding_requests", "Count of successful/failed embed requests",
                                   ["status", "mode"], registry=r)
        self.embed_latency = Histogram("rag_embedding_latency_seconds", "Time to embed in seconds",
                                       ["status", "mode"], registry=r)
        self.result_count = Histogram("rag_retrieve_result_count", "Chunks returned per retrieve call",
                                      buckets=_COUNTS, registry=r)
        self.search_mode = Counter("rag_hybrid_search_mode", "Retrieve calls by search mode", ["search_mode"],
                                   registry=r)
        self.hybrid_latency = Histogram("rag_hybrid_retrieve_latency_seconds",
                                        "Hybrid retrieve latency (embed, both searches, fusion)", buckets=_FAST,
                                        registry=r)
        self.top_score = Histogram("rag_hybrid_top_score", "Best fused score per retrieve call", buckets=_SCORES,
                                   registry=r)
        self.dense_candidates = Histogram("rag_hybrid_dense_candidates", "Dense candidates before fusion",
                                          buckets=_COUNTS, registry=r)
        self.sparse_candidates = Histogram("rag_hybrid_sparse_candidates", "BM25 candidates before fusion",
                                           buckets=_COUNTS, registry=r)
        self.overlap = Histogram("rag_hybrid_overlap_count", "Results found by both sides", buckets=_COUNTS,
                                 registry=r)
        self.dense_only = Histogram("rag_hybrid_dense_only_count", "Results found by the dense side only",
                                    buckets=_COUNTS, registry=r)
        self.sparse_only = Histogram("rag_hybrid_sparse_only_count", "Results found by BM25 only",
                                     buckets=_COUNTS, registry=r)

    def observe_request(self, method: str, route: str | None, status_code: int, seconds: float) -> None:
        status = "success" if status_code < 400 else "failure"
        op = ROUTE_OPS.get((method, route or ""))
        if op is not None:
            self.requests[op].labels(status).inc()
            self.latency[op].labels(status).observe(seconds)
        self.e2e_total.labels(status).inc()
        self.e2e_latency.labels(status).observe(seconds)

    def observe_embedding(self, mode: str, status: str, seconds: float) -> None:
        self.embed_total.labels(status, mode).inc()
        self.embed_latency.labels(status, mode).observe(seconds)

    def observe_retrieval(self, results: list[Fused], candidates: dict[str, int], seconds: float) -> None:
        self.result_count.observe(len(results))
        self.search_mode.labels("hybrid" if candidates.get("sparse") else "dense_only").inc()
        self.hybrid_latency.observe(seconds)
        self.dense_candidates.observe(candidates.get("dense", 0))
        self.sparse_candidates.observe(candidates.get("sparse", 0))
        self.overlap.observe(sum(r.source == "both" for r in results))
        self.dense_only.observe(sum(r.source == "dense_only" for r in results))
        self.sparse_only.observe(sum(r.source == "sparse_only" for r in results))
        if results:
            self.top_score.observe(results[0].score)

    def render(self) -> bytes:
        return generate_latest(self.registry)
