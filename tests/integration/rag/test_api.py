"""KAITO v0.12's RAG API (§4.4), endpoint by endpoint and status by status, on both vector stores.

Every test runs against FAISS (in-process) and Qdrant (qdrant-client's local mode, the same
client code that talks to a Qdrant server).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.integration.rag.conftest import CORPUS, corpus_docs


@pytest.fixture(params=["faiss", "qdrant"])
def engine(request):
    if request.param == "qdrant":
        pytest.importorskip("qdrant_client")
    return request.param


async def test_index_returns_kaito_documents_and_skips_duplicate_text(make_rag, engine):
    rag = await make_rag(vector_db=engine)
    first = await rag.index("docs", *corpus_docs())
    assert [d["doc_id"] for d in first] == [hashlib.sha256(t.encode()).hexdigest() for t, _ in CORPUS]
    assert first[0] == {"doc_id": first[0]["doc_id"], "text": CORPUS[0][0], "metadata": {"topic": "k8s"},
                        "hash_value": None, "is_truncated": False}
    again = await rag.index("docs", CORPUS[0][0], "A new document about sailing boats.")
    assert again[0]["doc_id"] == first[0]["doc_id"]
    listing = (await rag.client.get("/indexes/docs/documents", params={"limit": 100})).json()
    assert listing["total_items"] == len(CORPUS) + 1  # the repeated text was skipped
    assert (await rag.client.get("/indexes")).json() == ["docs"]
    await rag.stop()


async def test_list_documents_paginates_truncates_and_filters(make_rag, engine):
    rag = await make_rag(vector_db=engine)
    await rag.index("docs", *corpus_docs())
    page = (await rag.client.get("/indexes/docs/documents", params={"limit": 2, "offset": 1})).json()
    assert page["count"] == 2 and page["total_items"] == len(CORPUS)
    short = (await rag.client.get("/indexes/docs/documents", params={"max_text_length": 5})).json()
    assert all(d["is_truncated"] and len(d["text"]) == 5 for d in short["documents"])
    search = (await rag.client.get("/indexes/docs/documents",
                                   params={"metadata_filter": json.dumps({"topic": "search"})})).json()
    assert search["total_items"] == 2 and {d["metadata"]["topic"] for d in search["documents"]} == {"search"}
    bad = await rag.client.get("/indexes/docs/documents", params={"metadata_filter": "{not json"})
    assert bad.status_code == 400 and "metadata filter" in bad.json()["detail"]
    assert (await rag.client.get("/indexes/nope/documents")).status_code == 404
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"max_text_length": 0}):
        assert (await rag.client.get("/indexes/docs/documents", params=params)).status_code == 422, params
    await rag.stop()


async def test_update_documents_sorts_updated_unchanged_and_not_found(make_rag, engine):
    rag = await make_rag(vector_db=engine)
    [a, b] = await rag.index("docs", {"text": "Alpha document about lighthouses.", "metadata": {"v": 1}},
                             "Beta document about windmills.")
    body = {"documents": [
        {"doc_id": a["doc_id"], "text": "Alpha document, now about submarines.", "metadata": {"v": 2}},
        {"doc_id": b["doc_id"], "text": b["text"], "metadata": {}},
        {"doc_id": "missing", "text": "whatever"},
    ]}
    response = await rag.client.post("/indexes/docs/documents", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [d["doc_id"] for d in result["updated_documents"]] == [a["doc_id"]]
    assert [d["doc_id"] for d in result["unchanged_documents"]] == [b["doc_id"]]
    assert [d["doc_id"] for d in result["not_found_documents"]] == ["missing"]
    hits = await rag.retrieve("docs", "submarines")
    assert hits["results"][0]["doc_id"] == a["doc_id"] and "submarines" in hits["results"][0]["text"]
    assert all("lighthouses" not in r["text"] for r in (await rag.retrieve("docs", "lighthouses"))["results"])
    assert (await rag.client.post("/indexes/nope/documents", json=body)).status_code == 404
    await rag.stop()


async def test_delete_documents_and_index(make_rag, engine):
    rag = await make_rag(vector_db=engine)
    docs = await rag.index("docs", *corpus_docs())
    gone = docs[1]["doc_id"]
    response = await rag.client.post("/indexes/docs/documents/delete", json={"doc_ids": [gone, "nope"]})
    assert response.json() == {"deleted_doc_ids": [gone], "not_found_doc_ids": ["nope"]}
    assert all(r["doc_id"] != gone for r in (await rag.retrieve("docs", "brown fox dog", max_node_count=10))["results"])
    assert (await rag.client.post("/indexes/nope/documents/delete", json={"doc_ids": []})).status_code == 404
    response = await rag.client.delete("/indexes/docs")
    assert response.status_code == 200 and response.json() == {"message": "Successfully deleted index docs."}
    assert (await rag.client.get("/indexes")).json() == []
    assert (await rag.client.delete("/indexes/docs")).status_code == 404
    await rag.stop()


async def test_retrieve_statuses(make_rag, engine):
    rag = await make_rag(vector_db=engine, max_top_k=50)
    await rag.index("docs", *corpus_docs())
    post = rag.client.post
    assert (await post("/retrieve", json={"index_name": "nope", "query": "fox"})).status_code == 404
    empty = await post("/retrieve", json={"index_name": "docs", "query": "   "})
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    for count in (0, 51):
        response = await post("/retrieve", json={"index_name": "docs", "query": "fox", "max_node_count": count})
        assert response.status_code == 422, count
    assert (await post("/retrieve", json={"index_name": "docs"})).status_code == 422
    body = await rag.retrieve("docs", "fox", max_node_count=50)
    assert body["query"] == "fox" and body["count"] == len(body["results"]) == len(CORPUS)
    await rag.stop()


async def test_retrieve_metadata_filter_keeps_only_matching_chunks(make_rag, engine):
    rag = await make_rag(vector_db=engine)
    await rag.index("docs", *corpus_docs())
    body = await rag.retrieve("docs", "documents and search", max_node_count=10, metadata_filter={"topic": "search"})
    assert body["count"] == 2 and {r["metadata"]["topic"] for r in body["results"]} == {"search"}
    none = await rag.retrieve("docs", "fox", metadata_filter={"topic": "nothing-has-this"})
    assert none["count"] == 0
    await rag.stop()


async def test_malformed_documents_are_4xx_naming_the_field(make_rag, engine):
    rag = await make_rag(vector_db=engine)
    post = rag.client.post
    assert (await post("/index", json={"index_name": "d", "documents": [{"metadata": {}}]})).status_code == 422
    assert (await post("/index", json={"index_name": "d", "documents": [{"text": 5}]})).status_code == 422
    assert (await post("/index", json={"index_name": "d", "documents": "text"})).status_code == 422
    assert (await post("/index", json={"documents": []})).status_code == 422
    empty = await post("/index", json={"index_name": "d", "documents": [{"text": "ok"}, {"text": "  "}]})
    assert empty.status_code == 400 and empty.json()["detail"] == "documents[1].text: empty"
    no_lang = await post("/index", json={"index_name": "d", "documents": [
        {"text": "x = 1", "metadata": {"split_type": "code"}}]})
    assert no_lang.status_code == 400 and "metadata.language" in no_lang.json()["detail"]
    cobol = await post("/index", json={"index_name": "d", "documents": [
        {"text": "DISPLAY 'HI'.", "metadata": {"split_type": "code", "language": "cobol"}}]})
    assert cobol.status_code == 400 and "cobol" in cobol.json()["detail"]
    assert (await rag.client.get("/indexes")).json() == []  # nothing half-made
    await rag.stop()


async def test_health_and_metrics_use_kaito_names(make_rag, engine):
    rag = await make_rag(vector_db=engine)
    assert (await rag.client.get("/health")).json() == {"status": "Healthy", "detail": None}
    await rag.index("docs", *corpus_docs())
    await rag.retrieve("docs", "fox")
    await rag.client.post("/retrieve", json={"index_name": "nope", "query": "fox"})
    text = (await rag.client.get("/metrics")).text
    for line in ('rag_index_requests_total{status="success"} 1.0',
                 'rag_indexes_retrieve_requests_total{status="success"} 1.0',
                 'rag_indexes_retrieve_requests_total{status="failure"} 1.0',
                 'rag_embedding_requests_total{mode="local",status="success"}',
                 "num_requests_running 0.0", 'e2e_request_total{status="success"}',
                 'rag_hybrid_search_mode_total{search_mode="hybrid"} 1.0', "rag_retrieve_result_count_count 1.0"):
        assert line in text, line
    await rag.stop()
