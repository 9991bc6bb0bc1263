"""Indexes on disk (/persist, /load) and KAITO's snapshot lifecycle (persist on stop, restore on start).

One engine-neutral folder per index: `kaito-rag-index.json` (format version, embedding model,
dimension, counts), `documents.jsonl`, `chunks.jsonl` and `vectors.npy` (one float32 row per chunk).
A folder is written beside its target and renamed into place, so a reader never sees half an index
and a crash mid-write leaves the previous copy. The format is ours, not LlamaIndex's: a folder
persisted by KAITO's own service cannot be loaded here (the API is compatible, the files are not).

Snapshots, as KAITO's lifecycle hooks lay them out: `<persist dir>/systemsnapshots/
<YYYY-MM-DDTHH-MM-SS>_pod-<uid8>/<index>/` with `metadata.json` {timestamp, pod_name, pod_uid,
index_names, version: 1}, a `LATEST` symlink to the newest, and the 5 newest kept. KAITO does this
from preStop/postStart hooks over HTTP; here the service does it itself when it stops and starts,
so the pod needs no hooks.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from kaito.runtime.rag.errors import RagError
from kaito.runtime.rag.store import Chunk, DocRecord, IndexDump

log = logging.getLogger("kaito.runtime.rag")
MANIFEST = "kaito-rag-index.json"
FORMAT_VERSION = 1
SNAPSHOTS = "systemsnapshots"
LATEST = "LATEST"
_SUFFIX = re.compile(r"^(.*_pod-[^-]*)(?:-(\d+))?$")


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False))
            f.write("\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _replace_dir(staging: Path, target: Path) -> None:
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(target)


def write_dump(dump: IndexDump, target: Path) -> None:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _write_jsonl(staging / "documents.jsonl",
                     [{"doc_id": d.doc_id, "text": d.text, "metadata": d.metadata} for d in dump.documents])
        _write_jsonl(staging / "chunks.jsonl",
                     [{"node_id": c.node_id, "doc_id": c.doc_id, "text": c.text} for c in dump.chunks])
        np.save(staging / "vectors.npy", np.ascontiguousarray(dump.vectors, dtype=np.float32))
        manifest = {"version": FORMAT_VERSION, "embedding_model": dump.embedding_model,
                    "dimension": int(dump.vectors.shape[1]) if dump.vectors.ndim == 2 else 0,
                    "documents": len(dump.documents), "chunks": len(dump.chunks)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_dump(path: Path) -> IndexDump:
    """Read a persisted index; a folder that is not one is a 400 naming the file."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise RagError(f"{path} is not a persisted index (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("version") != FORMAT_VERSION:
            raise RagError(f"{manifest_path}: unsupported format version {manifest.get('version')!r}")
        documents = [DocRecord(doc_id=r["doc_id"], text=r["text"], metadata=r.get("metadata") or {})
                     for r in _read_jsonl(path / "documents.jsonl")]
        chunks = [Chunk(node_id=r["node_id"], doc_id=r["doc_id"], text=r["text"])
                  for r in _read_jsonl(path / "chunks.jsonl")]
        vectors = np.load(path / "vectors.npy", allow_pickle=False)
    except RagError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(f"{path}: damaged persisted index: {exc}") from None
    if len(chunks) and (vectors.ndim != 2 or vectors.shape[0] != len(chunks)):
        raise RagError(f"{path}: vectors.npy has {vectors.shape[0] if vectors.ndim else 0} rows "
                       f"for {len(chunks)} chunks")
    return IndexDump(documents=documents, chunks=chunks, vectors=vectors,
                     embedding_model=str(manifest.get("embedding_model", "")))


def snapshots_root(persist_dir: Path) -> Path:
    return Path(persist_dir) / SNAPSHOTS


def write_snapshot(persist_dir: Path, dumps: dict[str, IndexDump], pod_name: str, pod_uid: str,
                   keep: int, now: float | None = None) -> Path:
    """Write every index into a new snapshot folder, point LATEST at it, prune to `keep`."""
    root = snapshots_root(persist_dir)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(now))
    uid8 = (pod_uid or "local").replace("-", "")[:8]
    base = f"{stamp}_pod-{uid8}"
    taken = [_order_key(p.name)[1] for p in root.iterdir() if p.name == base or p.name.startswith(base + "-")]
    folder = root / (f"{base}-{max(taken) + 1}" if taken else base)  # same second: a higher suffix
    staging = Path(tempfile.mkdtemp(prefix=".snapshot.", dir=root))
    try:
        for name, dump in dumps.items():
            write_dump(dump, staging / _safe_dir_name(name))
        metadata = {"timestamp": stamp, "pod_name": pod_name, "pod_uid": pod_uid,
                    "index_names": list(dumps), "version": 1}
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=1))
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    link = root / LATEST
    tmp_link = root / f".{LATEST}.{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(folder.name)
    tmp_link.replace(link)
    for old in _snapshot_folders(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def _safe_dir_name(index_name: str) -> str:
    # index names may hold "/" (KAITO URL-decodes them); a folder name may not
    return index_name.replace("%", "%25").replace("/", "%2F")


def _index_name(dir_name: str) -> str:
    return dir_name.replace("%2F", "/").replace("%25", "%")


def _snapshot_folders(root: Path) -> list[Path]:
    folders = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
               and (p / "metadata.json").is_file()]
    return sorted(folders, key=lambda p: _order_key(p.name))


def _order_key(name: str) -> tuple[str, int]:
    match = _SUFFIX.match(name)
    return (match.group(1), int(match.group(2) or 1)) if match else (name, 1)


def latest_snapshot(persist_dir: Path) -> Path | None:
    """LATEST if it resolves, else the newest complete snapshot, else None."""
    root = snapshots_root(persist_dir)
    if not root.is_dir():
        return None
    link = root / LATEST
    if link.is_symlink() and (link.resolve() / "metadata.json").is_file():
        return link.resolve()
    folders = _snapshot_folders(root)
    return folders[-1] if folders else None


def snapshot_indexes(folder: Path) -> dict[str, Path]:
    """Index name → folder, in the order metadata.json lists them."""
    metadata = json.loads((folder / "metadata.json").read_text())
    found = {_index_name(p.name): p for p in folder.iterdir() if (p / MANIFEST).is_file()}
    listed = [n for n in metadata.get("index_names", []) if n in found]
    return {n: found[n] for n in [*listed, *sorted(set(found) - set(listed))]}
