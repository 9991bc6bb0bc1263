"""e2e: a Workspace with the tiny model and a RAGEngine answering through it, on the local cluster.

Both are applied from one file and waited for; files are indexed with `kaito rag index`;
`/v1/chat/completions` with `index_name` answers through the Workspace's model server with
`source_nodes`; `kaito rag ask`, `kaito get/describe ragengines`, `kaito endpoint` and `kaito ui`
take the engine; deleting both leaves no object, pod process, port or pod folder behind.
"""

from __future__ import annotations

import asyncio

import httpx

from tests.e2e.conftest import wait_for, workspace_yaml


def _ragengine_yaml(name: str, workspace: str, embedder: str) -> str:
    return f"""apiVersion: kaito.sh/v1beta1
kind: RAGEngine
metadata:
  name: {name}
spec:
  embedding:
    local:
      modelID: {embedder}
  inferenceService:
    url: http://{workspace}/v1/chat/completions
    contextWindowSize: 512
"""


def _left_in_store(kaito) -> dict[str, list[str]]:
    from kaito.cluster import protocol
    from kaito.cluster.local import LocalCluster

    async def read() -> dict[str, list[str]]:
        cluster = LocalCluster(kaito.home / "store.db")
        try:
            kinds = (protocol.WORKSPACE, protocol.RAGENGINE, protocol.DEPLOYMENT, protocol.SERVICE, protocol.POD,
                     protocol.NODE, protocol.NODECLAIM, protocol.CONTROLLER_REVISION)
            return {k.kind: [o["metadata"]["name"] for o in (await cluster.list(k)).items] for k in kinds}
        finally:
            await cluster.close()

    return asyncio.run(read())


def test_ragengine_answers_through_a_workspace_then_both_go(local_cluster, tiny_model, tmp_path):
    from tests.support.tiny_embedder import build_tiny_embedder

    kaito = local_cluster
    embedder = build_tiny_embedder(tiny_model.cache_dir)
    manifest = kaito.write("rag.yaml", workspace_yaml("tiny", tiny_model.repo_id) + "---\n"
                           + _ragengine_yaml("docs", "tiny", embedder.repo_id))
    applied = kaito("apply", "-f", manifest, "--wait", "--timeout", "300", timeout=330)
    assert applied.returncode == 0, applied.stderr
    assert "workspace.kaito.sh/tiny created" in applied.stdout and "ragengine.kaito.sh/docs created" in applied.stdout

    table = kaito("get", "ragengines", check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "INSTANCE", "RESOURCEREADY", "SERVICEREADY", "AGE"]
    assert table[1].split()[:3] == ["docs", "True", "True"]  # no instance: no node of its own
    assert kaito("get", "rag", "-o", "name", check=True).stdout.strip() == "ragengine.kaito.sh/docs"
    described = kaito("describe", "ragengine", "docs", check=True).stdout
    assert "InferenceServiceReady" in described and "Workspace tiny is serving" in described

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lighthouse.md").write_text("# Lighthouse\n\nThe lighthouse keeper polished the brass lamp.\n")
    (corpus / "bakery.txt").write_text("Bakers knead dough at dawn.\n")
    (corpus / "tide.py").write_text("def tide(hour):\n    return hour % 12  # high tide twice a day\n")
    indexed = kaito("rag", "index", "docs", str(corpus), "--index", "notes", timeout=180)
    assert indexed.returncode == 0, indexed.stderr
    assert "indexed 3 file(s) into index notes" in indexed.stdout
    assert "3/3 file(s) indexed" in indexed.stderr  # progress

    rag_url = kaito("endpoint", "docs", check=True).stdout.strip()
    model_url = kaito("endpoint", "tiny", check=True).stdout.strip()
    served = httpx.get(f"{model_url}/v1/models", timeout=30).json()["data"][0]["id"]
    body = {"index_name": "notes", "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Who polished the brass lamp of the lighthouse?"}]}
    answer = httpx.post(f"{rag_url}/v1/chat/completions", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    reply = answer.json()
    assert reply["model"] == served  # answered through the Workspace's model server
    assert reply["usage"]["prompt_tokens"] > 20  # with the retrieved context
    assert any("brass lamp" in node["text"] for node in reply["source_nodes"])

    asked = kaito("rag", "ask", "docs", "Who polished the brass lamp?", "--max-tokens", "8", timeout=120)
    assert asked.returncode == 0, asked.stderr
    assert "Sources:" in asked.stdout and "lighthouse.md" in asked.stdout
    assert kaito("ui", "docs", "--no-browser", check=True).stdout.strip() == f"{rag_url}/ui"
    assert len(set(kaito.pod_processes().values())) == 2  # two pods: the model server (with its engine process) and the RAG service

    assert kaito("delete", "ragengine", "docs", timeout=150).returncode == 0
    assert kaito("delete", "workspace", "tiny", timeout=150).returncode == 0
    wait_for("every object to go", lambda: not any(_left_in_store(kaito).values()), timeout=60)
    assert "No ragengines found" in kaito("get", "ragengines").stderr
    assert kaito.pod_processes() == {}
    pods_dir = kaito.home / "volumes" / "pods" / "default"
    assert not pods_dir.exists() or not any(pods_dir.iterdir())  # the engine's storage folder went with its pod


def test_an_unreachable_inference_endpoint_is_a_clear_answer_not_a_crash_loop(local_cluster, tiny_model, tmp_path):
    from tests.support.tiny_embedder import build_tiny_embedder

    kaito = local_cluster
    embedder = build_tiny_embedder(tiny_model.cache_dir)
    manifest = kaito.write("lost.yaml", _ragengine_yaml("lost", "tiny", embedder.repo_id).replace(
        "http://tiny/v1/chat/completions", "http://127.0.0.1:9/v1/chat/completions"))
    applied = kaito("apply", "-f", manifest, "--wait", "--timeout", "180", timeout=200)
    assert applied.returncode == 0, applied.stderr  # a URL is taken as written: the service itself runs
    (tmp_path / "a.txt").write_text("Nothing answers on port nine.")
    assert kaito("rag", "index", "lost", str(tmp_path / "a.txt"), timeout=120).returncode == 0
    asked = kaito("rag", "ask", "lost", "Does anything answer?", timeout=120)
    assert asked.returncode == 1
    assert "502" in asked.stderr and "127.0.0.1:9" in asked.stderr and "Traceback" not in asked.stderr
    rag_url = kaito("endpoint", "lost", check=True).stdout.strip()
    retrieved = httpx.post(f"{rag_url}/retrieve", json={"index_name": "default", "query": "port nine"}, timeout=60)
    assert retrieved.status_code == 200 and retrieved.json()["count"] == 1  # retrieval does not need the model
    described = kaito("describe", "ragengine", "lost", check=True).stdout
    assert "restarts=0" in described  # no crash loop
    assert kaito("delete", "ragengine", "lost", timeout=150).returncode == 0
