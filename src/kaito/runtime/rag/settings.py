"""One typed settings object for the RAG service, from environment variables and flags.

The environment is the contract with the RAGEngine controller: it sets exactly these names and the
service reads exactly these names (KAITO v0.12's controller sets `EMBEDDING_TYPE`/`MODEL_ID` while
its service reads `EMBEDDING_SOURCE_TYPE`/`LOCAL_EMBEDDING_MODEL_ID`, so `spec.embedding` is
ignored there; here one table serves both sides). Flags win over the environment; secrets are
environment-only so they never show in a process list.

| environment variable            | flag                     | RAGEngine field / meaning                         |
|---------------------------------|--------------------------|---------------------------------------------------|
| `EMBEDDING_TYPE`                | `--embedding-type`       | `local` (default) or `remote` (`spec.embedding`)  |
| `MODEL_ID`                      | `--embedding-model`      | `embedding.local.modelID`: HF id or local dir     |
|                                 |                          | (default `BAAI/bge-small-en-v1.5`, as KAITO)      |
| `HF_TOKEN`                      | –                        | `embedding.local.modelAccessSecret` (gated models)|
| `REMOTE_EMBEDDING_URL`          | `--embedding-url`        | `embedding.remote.url`                            |
| `REMOTE_EMBEDDING_ACCESS_SECRET`| –                        | `embedding.remote.accessSecret` (Bearer token)    |
| `REMOTE_EMBEDDING_MODEL`        | `--embedding-remote-model` | `model` sent to an OpenAI-style `/embeddings` URL |
| `VECTOR_DB_TYPE`                | `--vector-db`            | `storage.vectorDB.engine`: `faiss` (default), `qdrant` |
| `VECTOR_DB_URL`                 | `--vector-db-url`        | `storage.vectorDB.url` (qdrant; unset: on-disk local mode) |
| `VECTOR_DB_ACCESS_SECRET`       | –                        | `storage.vectorDB.accessSecret` (Qdrant API key)  |
| `DEFAULT_VECTOR_DB_PERSIST_DIR` | `--persist-dir`          | `<mountPath>/<rag>` with a volume, else `storage` |
| `LLM_INFERENCE_URL`             | `--llm-url`              | `inferenceService.url`; unset: retrieve-only      |
| `LLM_ACCESS_SECRET`             | –                        | `inferenceService.accessSecret` (Bearer token)    |
| `LLM_CONTEXT_WINDOW`            | `--llm-context-window`   | `inferenceService.contextWindowSize` (64000)      |
| `POD_NAME`, `POD_UID`           | –                        | named in snapshot folders                         |
| `RAG_SIMILARITY_THRESHOLD`      | –                        | least dense cosine similarity for a chunk found   |
|                                 |                          | only by the dense side to enter a chat's context  |
| `RAG_CONTEXT_TOKEN_FILL_RATIO`  | –                        | share of the free window given to context (0.5)   |
| `RAG_MAX_TOP_K`                 | –                        | largest `max_node_count` (300)                    |
| `RAG_CHUNK_SIZE` / `RAG_CHUNK_OVERLAP` | `--chunk-size` / `--chunk-overlap` | tokens per chunk (default: 1024, capped at the local embedder's input limit) / overlap (default: a fifth) |
| `RAG_EMBED_BATCH_SIZE`          | `--embed-batch-size`     | texts per embedding batch (32)                    |
| `RAG_EMBED_BATCH_TOKENS`        | `--embed-batch-tokens`   | padded tokens per embedding batch (4096)          |
| `RAG_EMBED_THREADS`             | `--embed-threads`        | torch threads of the local embedder (1)           |
| `RAG_SNAPSHOTS`                 | `--snapshots`            | persist on stop / restore on start (true; faiss)  |

KAITO's service-side names are read as fallbacks (`EMBEDDING_SOURCE_TYPE`,
`LOCAL_EMBEDDING_MODEL_ID`), so a Deployment written for KAITO's image behaves the same here.
A wrong value is a `SettingsError` naming the variable or flag; `__main__` exits 2 with it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_EMBEDDING_MODEL = "BAAI/bge-small-en-v1.5"
ENGINES = ("faiss", "qdrant")


class SettingsError(ValueError):
    """A setting is wrong; the message names the variable or flag and the problem."""


class RagSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    embedding_type: Literal["local", "remote"] = "local"
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_url: str | None = None
    embedding_secret: str | None = None
    embedding_remote_model: str | None = None
    vector_db: Literal["faiss", "qdrant"] = "faiss"
    vector_db_url: str | None = None
    vector_db_secret: str | None = None
    persist_dir: Path = Path("storage")
    llm_url: str | None = None
    llm_secret: str | None = None
    llm_context_window: int = Field(default=64000, gt=0)
    similarity_threshold: float = Field(default=0.5, ge=-1.0, le=1.0)
    context_fill_ratio: float = Field(default=0.5, gt=0.0, le=1.0)
    max_top_k: int = Field(default=300, gt=0)
    chunk_size: int | None = Field(default=None, gt=0)
    chunk_overlap: int | None = Field(default=None, ge=0)
    embed_batch_size: int = Field(default=32, gt=0)
    embed_batch_tokens: int = Field(default=4096, gt=0)
    embed_threads: int = Field(default=1, gt=0)
    snapshots: bool = True
    snapshots_kept: int = Field(default=5, gt=0)
    pod_name: str = ""
    pod_uid: str = ""
    host: str = "0.0.0.0"
    port: int = Field(default=5000, ge=0, le=65535)


# field -> (environment variables, first wins; flags). Secrets have no flag.
_SOURCES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "embedding_type": (("EMBEDDING_TYPE", "EMBEDDING_SOURCE_TYPE"), ("--embedding-type",)),
    "embedding_model": (("MODEL_ID", "LOCAL_EMBEDDING_MODEL_ID"), ("--embedding-model",)),
    "embedding_url": (("REMOTE_EMBEDDING_URL",), ("--embedding-url",)),
    "embedding_secret": (("REMOTE_EMBEDDING_ACCESS_SECRET",), ()),
    "embedding_remote_model": (("REMOTE_EMBEDDING_MODEL",), ("--embedding-remote-model",)),
    "vector_db": (("VECTOR_DB_TYPE",), ("--vector-db",)),
    "vector_db_url": (("VECTOR_DB_URL",), ("--vector-db-url",)),
    "vector_db_secret": (("VECTOR_DB_ACCESS_SECRET",), ()),
    "persist_dir": (("DEFAULT_VECTOR_DB_PERSIST_DIR",), ("--persist-dir",)),
    "llm_url": (("LLM_INFERENCE_URL",), ("--llm-url",)),
    "llm_secret": (("LLM_ACCESS_SECRET",), ()),
    "llm_context_window": (("LLM_CONTEXT_WINDOW",), ("--llm-context-window",)),
    "similarity_threshold": (("RAG_SIMILARITY_THRESHOLD",), ()),
    "context_fill_ratio": (("RAG_CONTEXT_TOKEN_FILL_RATIO",), ()),
    "max_top_k": (("RAG_MAX_TOP_K",), ()),
    "chunk_size": (("RAG_CHUNK_SIZE",), ("--chunk-size",)),
    "chunk_overlap": (("RAG_CHUNK_OVERLAP",), ("--chunk-overlap",)),
    "embed_batch_size": (("RAG_EMBED_BATCH_SIZE",), ("--embed-batch-size",)),
    "embed_batch_tokens": (("RAG_EMBED_BATCH_TOKENS",), ("--embed-batch-tokens",)),
    "embed_threads": (("RAG_EMBED_THREADS",), ("--embed-threads",)),
    "snapshots": (("RAG_SNAPSHOTS",), ("--snapshots",)),
    "pod_name": (("POD_NAME",), ()),
    "pod_uid": (("POD_UID",), ()),
    "host": ((), ("--host",)),
    "port": ((), ("--port",)),
}
_HELP = {
    "embedding_type": "local (a transformers model in this process) or remote (an HTTP endpoint)",
    "embedding_model": f"local embedding model: Hugging Face id or directory (default {DEFAULT_EMBEDDING_MODEL})",
    "embedding_url": "remote embedding endpoint: POST {\"inputs\": text} -> list, or an OpenAI /v1/embeddings URL",
    "embedding_remote_model": "`model` sent to an OpenAI-style embeddings endpoint",
    "vector_db": "faiss (in-process, default) or qdrant",
    "vector_db_url": "Qdrant server URL (default: Qdrant's local mode under the persist dir)",
    "persist_dir": "where /persist, /load and snapshots read and write (default: storage)",
    "llm_url": "OpenAI-style endpoint of the LLM; chat mode when the path has /chat/completions",
    "llm_context_window": "the LLM's context window in tokens (default 64000)",
    "chunk_size": "tokens per chunk (default 1024, capped at the local embedder's input limit)",
    "chunk_overlap": "tokens shared by neighbouring chunks (default: a fifth of the chunk size, at most 200)",
    "embed_batch_size": "texts per embedding batch (default 32)",
    "embed_batch_tokens": "padded tokens per embedding batch, which bounds its memory (default 4096)",
    "embed_threads": "torch threads per embedding call (default 1: see bench/rag_memory.py)",
    "snapshots": "persist every index on stop and restore the latest snapshot on start (default true)",
    "host": "address to listen on (default 0.0.0.0)",
    "port": "port to listen on (default 5000, as KAITO)",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _name_of(field: str, from_flag: bool) -> str:
    envs, flags = _SOURCES[field]
    return (flags[0] if from_flag and flags else envs[0] if envs else flags[0])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaito-rag", allow_abbrev=False,
                                     description="KAITO RAG service: index documents, retrieve, chat with context.")
    for field, (_, flags) in _SOURCES.items():
        if flags:
            parser.add_argument(*flags, dest=field, default=None, help=_HELP.get(field))
    return parser


def _check_url(value: str | None, name: str) -> None:
    if value is None:
        return
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{name}: not an http(s) URL: {value!r}")


def build_settings(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> RagSettings:
    """Flags over environment; raise `SettingsError` naming the first bad setting."""
    env = os.environ if env is None else env
    try:
        args = build_parser().parse_args(list(argv or []))
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise SettingsError("invalid command line (see the message above)") from exc
    values: dict[str, object] = {}
    from_flag: set[str] = set()
    for field, (envs, _) in _SOURCES.items():
        for name in envs:
            if env.get(name, "") != "":
                values[field] = env[name]
                break
        flag_value = getattr(args, field, None)
        if flag_value is not None:
            values[field] = flag_value
            from_flag.add(field)
    for field in ("embedding_type", "vector_db"):
        if isinstance(values.get(field), str):
            values[field] = values[field].strip().lower()  # type: ignore[union-attr]
    if values.get("vector_db") not in (None, *ENGINES):
        raise SettingsError(f"{_name_of('vector_db', 'vector_db' in from_flag)}: unsupported vector DB engine "
                            f"{values['vector_db']!r} (use faiss or qdrant)")
    if values.get("embedding_type") not in (None, "local", "remote"):
        raise SettingsError(f"{_name_of('embedding_type', 'embedding_type' in from_flag)}: embedding type must be "
                            f"local or remote, got {values['embedding_type']!r}")
    if "snapshots" in values:
        raw = str(values["snapshots"]).strip().lower()
        if raw not in _TRUE | _FALSE:
            raise SettingsError(f"{_name_of('snapshots', 'snapshots' in from_flag)}: expected true or false, got {raw!r}")
        values["snapshots"] = raw in _TRUE
    try:
        settings = RagSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{_name_of(str(e['loc'][0]), str(e['loc'][0]) in from_flag)}: {e['msg']}"
                             for e in exc.errors())
        raise SettingsError(problems) from None
    if settings.embedding_type == "remote" and not settings.embedding_url:
        raise SettingsError("REMOTE_EMBEDDING_URL: required when EMBEDDING_TYPE is remote")
    _check_url(settings.embedding_url, _name_of("embedding_url", "embedding_url" in from_flag))
    _check_url(settings.vector_db_url, _name_of("vector_db_url", "vector_db_url" in from_flag))
    _check_url(settings.llm_url, _name_of("llm_url", "llm_url" in from_flag))
    if settings.chunk_size and settings.chunk_overlap is not None and settings.chunk_overlap >= settings.chunk_size:
        raise SettingsError("RAG_CHUNK_OVERLAP: must be smaller than RAG_CHUNK_SIZE")
    return settings
