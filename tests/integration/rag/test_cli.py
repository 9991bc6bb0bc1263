"""`kaito rag index` and `kaito rag ask` against a real RAG service process (tiny embedder), its LLM a
small OpenAI-style stand-in on loopback; the chat page at `/ui` of the same service."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from kaito.cli import rag as rag_cli
from kaito.cli.main import app
from tests.integration.rag.test_entrypoint import _env, _free_port, _wait_healthy


@pytest.fixture(scope="module")
def fake_llm():
    """An OpenAI chat endpoint that answers with the context it was given (so a test sees it went in)."""
    import uvicorn
    from fastapi import Body, FastAPI

    api = FastAPI()
    seen: list[dict] = []

    @api.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": "stand-in", "object": "model"}]}

    @api.post("/v1/chat/completions")
    async def chat(body: dict = Body(...)):
        seen.append(body)
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Lighthouses guide ships."},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34}}

    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}", seen
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def service(tiny_embedder, tmp_path_factory, fake_llm):
    port = _free_port()
    env = _env(MODEL_ID=tiny_embedder.repo_id, DEFAULT_VECTOR_DB_PERSIST_DIR=str(tmp_path_factory.mktemp("rag")),
               LLM_INFERENCE_URL=f"{fake_llm[0]}/v1/chat/completions", LLM_CONTEXT_WINDOW="4096", RAG_SNAPSHOTS="false")
    proc = subprocess.Popen([sys.executable, "-m", "kaito.runtime.rag", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def _kaito(*args: str):
    return CliRunner().invoke(app, list(args))


def test_index_then_ask_answers_with_sources(service, fake_llm, tmp_path):
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "lighthouse.md").write_text("# Lighthouses\n\nThe lighthouse keeper polished the lamp every night.\n")
    (docs / "guide" / "bakery.txt").write_text("Bakers knead dough at dawn and bake bread before sunrise.\n")
    (docs / "guide" / "tide.py").write_text("def tide(hour):\n    \"\"\"High tide follows the moon.\"\"\"\n"
                                             "    return hour % 12\n")
    (docs / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # in a directory: left out, said so
    (docs / ".hidden.txt").write_text("never indexed")
    result = _kaito("rag", "index", service, str(docs), "--index", "handbook")
    assert result.exit_code == 0, result.output
    assert "indexed 3 file(s) into index handbook (3 documents in it)" in result.stdout
    assert "1 file(s) in the directories have no text" in result.output
    assert "3/3 file(s) indexed" in result.output  # progress, one line per batch in a pipe
    listed = httpx.get(f"{service}/indexes/handbook/documents", params={"limit": 10}).json()
    meta = {d["metadata"]["file_name"]: d["metadata"] for d in listed["documents"]}
    assert meta["tide.py"]["split_type"] == "code" and meta["tide.py"]["language"] == "python"
    assert meta["lighthouse.md"]["language"] == "markdown" and "split_type" not in meta["bakery.txt"]

    answer = _kaito("rag", "ask", service, "Who polished the lamp in the lighthouse?")
    assert answer.exit_code == 0, answer.output
    assert answer.stdout.startswith("Lighthouses guide ships.")
    assert "Sources:" in answer.stdout and "lighthouse.md" in answer.stdout.split("Sources:")[1]
    sent = fake_llm[1][-1]
    assert "lighthouse keeper polished the lamp" in json.dumps(sent["messages"])  # the context went to the model
    as_json = json.loads(_kaito("rag", "ask", service, "lamp?", "-o", "json").stdout)
    assert as_json["source_nodes"] and as_json["choices"][0]["message"]["content"]


def test_a_file_that_is_not_text_is_one_line_and_nothing_is_indexed(service, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("A perfectly fine document.")
    bad = tmp_path / "report.txt"
    bad.write_bytes("caf\xe9 au lait".encode("latin-1"))
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    result = _kaito("rag", "index", service, str(good), str(bad), str(empty), str(tmp_path / "missing.txt"),
                    "--index", "strict")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line]
    assert f"kaito rag index: {bad}: not UTF-8 text (byte 3): convert it to UTF-8 first" in lines
    assert f"kaito rag index: {empty}: empty: nothing to index" in lines
    assert any("missing.txt: no such file or directory" in line for line in lines)
    assert "Traceback" not in result.output
    assert "strict" not in httpx.get(f"{service}/indexes").json()  # nothing half-written


def test_ask_says_clearly_when_there_is_nothing_to_answer_from(service):
    empty = _kaito("rag", "ask", service, "anything?", "--index", "nope")
    assert empty.exit_code == 1 and "the RAG service answered 404" in empty.output
    blank = _kaito("rag", "ask", service, "  ")
    assert blank.exit_code == 1 and "the question is empty" in blank.output
    gone = _kaito("rag", "ask", "http://127.0.0.1:9", "hello?")
    assert gone.exit_code == 1 and "is not reachable" in gone.output and "Traceback" not in gone.output


def test_the_service_serves_the_chat_page(service):
    page = httpx.get(f"{service}/ui")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_extension_languages_are_the_services():
    from kaito.runtime.rag import chunking

    assert set(rag_cli.CODE_LANGUAGES.values()) <= {*chunking.GRAMMARS, "markdown"}
    batches = rag_cli.plan_batches([{"text": "x" * 1000}] * 40)
    assert [len(b) for b in batches] == [16, 16, 8]
    big = rag_cli.plan_batches([{"text": "x" * (rag_cli.BATCH_BYTES - 10)}, {"text": "y" * 100}])
    assert [len(b) for b in big] == [1, 1]
