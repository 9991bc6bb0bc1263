"""`python -m kaito.runtime.rag` as a process: bad settings exit clearly, SIGTERM snapshots, restart restores.

Also: long operations say so in the log (model load, embedding progress).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **extra}


def _run(args, env, timeout=60):
    return subprocess.run([sys.executable, "-m", "kaito.runtime.rag", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_bad_settings_exit_2_naming_the_setting_without_traceback(tmp_path):
    result = _run([], _env(VECTOR_DB_TYPE="milvus"))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: VECTOR_DB_TYPE: unsupported vector DB engine 'milvus' (use faiss or qdrant)"
    result = _run(["--llm-url", "not a url"], _env())
    assert result.returncode == 2 and "--llm-url: not an http(s) URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_unloadable_embedding_model_exits_1_naming_it(tmp_path):
    result = _run(["--embedding-model", str(tmp_path / "missing"), "--persist-dir", str(tmp_path)], _env())
    assert result.returncode == 1, result.stderr
    assert "MODEL_ID: cannot load embedding model" in result.stderr and "missing" in result.stderr
    assert "Traceback" not in result.stderr


def _wait_healthy(port: int, proc) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the RAG service did not come up")


def test_sigterm_persists_a_snapshot_that_the_next_start_restores(tiny_embedder, tmp_path):
    env = _env(MODEL_ID=tiny_embedder.repo_id, DEFAULT_VECTOR_DB_PERSIST_DIR=str(tmp_path), POD_UID="abcdef12-0")
    outputs = []
    answers = []
    for round_ in range(2):
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "kaito.runtime.rag", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_healthy(port, proc)
            base = f"http://127.0.0.1:{port}"
            if round_ == 0:
                docs = [{"text": "The lighthouse keeper polished the lamp."}, {"text": "Bakers knead dough at dawn."}]
                assert httpx.post(f"{base}/index", json={"index_name": "k", "documents": docs}).status_code == 200
            answers.append(httpx.post(f"{base}/retrieve", json={"index_name": "k", "query": "lighthouse lamp"}).json())
        finally:
            proc.send_signal(signal.SIGTERM)
            outputs.append(proc.communicate(timeout=60)[0])
        assert proc.returncode in (0, -15), outputs[-1]
    assert "loading embedding model" in outputs[0] and "persisted 1 indexes to snapshot" in outputs[0]
    assert "restoring indexes from snapshot" in outputs[1]
    assert answers[0] == answers[1] and answers[0]["results"][0]["text"].startswith("The lighthouse")
    assert (tmp_path / "systemsnapshots" / "LATEST").is_symlink()


async def test_large_batches_log_progress(make_rag, caplog, monkeypatch):
    from kaito.runtime.rag import embedding, service

    monkeypatch.setattr(embedding, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(service, "LOG_INDEXING_FROM", 10)
    rag = await make_rag()
    with caplog.at_level(logging.INFO, logger="kaito.runtime.rag"):
        await rag.index("big", *[f"Document number {i} talks about topic {i % 7}." for i in range(40)])
    messages = [r.getMessage() for r in caplog.records]
    assert "indexing 40 documents: 40 chunks to embed" in messages
    assert any(m.startswith("embedding 40 chunks: 16/40") for m in messages)
    assert any(m.startswith("indexed 40 chunks into 'big'") for m in messages)
    await rag.stop()
