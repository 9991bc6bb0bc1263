"""/persist and /load, and KAITO's snapshot lifecycle: persist on stop, restore LATEST on start."""

from __future__ import annotations

import json

from kaito.runtime.rag import persistence
from tests.integration.rag.conftest import corpus_docs

QUERIES = ["brown fox", "similarity search over vectors", "kubernetes operators", "italian salad basil"]


async def _answers(rag, name="docs"):
    return [[(r["node_id"], round(r["score"], 6), r["text"]) for r in (await rag.retrieve(name, q))["results"]]
            for q in QUERIES]


async def test_persist_restart_load_gives_the_same_answers(make_rag, tmp_path):
    first = await make_rag(snapshots=False)
    await first.index("docs", *corpus_docs())
    before = await _answers(first)
    response = await first.client.post("/persist/docs")
    target = first.settings.persist_dir / "docs"
    assert response.json() == {"message": f"Successfully persisted index docs to {target}."}
    custom = tmp_path / "elsewhere" / "copy"
    assert (await first.client.post("/persist/docs", params={"path": str(custom)})).status_code == 200
    assert (await first.client.post("/persist/nope")).status_code == 404
    await first.stop()

    second = await make_rag(snapshots=False)
    assert (await second.client.get("/indexes")).json() == []
    response = await second.client.post("/load/docs")
    assert response.json() == {"message": f"Successfully loaded index docs from {target}."}
    assert await _answers(second) == before
    conflict = await second.client.post("/load/docs")
    assert conflict.status_code == 409 and "already exists" in conflict.json()["detail"]
    assert (await second.client.post("/load/docs", params={"overwrite": "true", "path": str(custom)})).status_code == 200
    assert await _answers(second) == before
    assert (await second.client.post("/load/other", params={"path": str(tmp_path / "missing")})).status_code == 404
    not_an_index = tmp_path / "junk"
    not_an_index.mkdir()
    bad = await second.client.post("/load/other", params={"path": str(not_an_index)})
    assert bad.status_code == 400 and "not a persisted index" in bad.json()["detail"]
    await second.stop()


async def test_load_with_another_embedding_model_embeds_again(make_rag, tmp_path):
    rag = await make_rag(snapshots=False)
    await rag.index("docs", *corpus_docs())
    await rag.client.post("/persist/docs")
    manifest = rag.settings.persist_dir / "docs" / persistence.MANIFEST
    data = json.loads(manifest.read_text())
    data["embedding_model"] = "someone/else"
    manifest.write_text(json.dumps(data))
    before = await _answers(rag)
    assert (await rag.client.post("/load/docs", params={"overwrite": "true"})).status_code == 200
    assert await _answers(rag) == before  # same model here, so re-embedding gives the same vectors
    await rag.stop()


async def test_stop_writes_a_snapshot_and_start_restores_latest(make_rag):
    first = await make_rag(pod_name="rag-0", pod_uid="0123abcd-ffff")
    await first.index("docs", *corpus_docs())
    await first.index("more", "A document about sailing boats and the open sea.")
    before = await _answers(first)
    await first.stop()
    root = persistence.snapshots_root(first.settings.persist_dir)
    latest = root / persistence.LATEST
    assert latest.is_symlink() and latest.resolve().name.endswith("_pod-0123abcd")
    metadata = json.loads((latest.resolve() / "metadata.json").read_text())
    assert metadata["index_names"] == ["docs", "more"] and metadata["pod_name"] == "rag-0"
    assert metadata["version"] == 1 and metadata["pod_uid"] == "0123abcd-ffff"

    second = await make_rag(pod_uid="0123abcd-ffff")
    assert (await second.client.get("/indexes")).json() == ["docs", "more"]
    assert await _answers(second) == before
    await second.stop()


async def test_snapshots_keep_the_five_newest(make_rag):
    for round_ in range(7):
        rag = await make_rag()
        await rag.index(f"i{round_}", f"Document number {round_} about distinct things.")
        await rag.stop()
    root = persistence.snapshots_root(rag.settings.persist_dir)
    folders = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(folders) == 5
    restored = await make_rag()
    assert (await restored.client.get("/indexes")).json() == [f"i{n}" for n in range(7)]
    await restored.stop()


async def test_qdrant_collections_outlive_the_service(make_rag):
    first = await make_rag(vector_db="qdrant")
    await first.index("docs", *corpus_docs())
    before = await _answers(first)
    assert (await first.client.delete("/indexes/docs")).status_code == 200
    await first.stop()
    second = await make_rag(vector_db="qdrant")
    assert (await second.client.get("/indexes")).json() == ["docs"]  # KAITO: the collection is kept
    assert await _answers(second) == before
    assert (await second.client.post("/persist/docs")).status_code == 200
    assert (await second.client.post("/load/copy")).status_code == 404
    assert (await second.client.post("/load/copy", params={
        "path": str(second.settings.persist_dir / "docs")})).status_code == 200
    assert await _answers(second, "copy") == before
    await second.stop()
