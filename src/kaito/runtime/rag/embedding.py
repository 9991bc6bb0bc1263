"""Turning texts into unit vectors: a local transformers model, or a remote HTTP endpoint.

Both return float32 rows of length 1, so the inner product of two rows is their cosine similarity
(what the FAISS `IndexFlatIP` and Qdrant's cosine distance both rank by).

* `LocalEmbedder`: any Hugging Face id or directory through `AutoModel`; mean pooling over the
  attention mask, then L2 normalisation (what sentence-transformers does for BERT-style models).
  Texts are sorted by length before batching so padding stays small; batches log progress.
  Memory, measured with `bench/rag_memory.py` (idle is torch's ~200 MiB and transformers'): a batch
  holds at most `batch_tokens` padded tokens (attention and its mask grow with batch × length², so
  32 texts of 384 tokens held ~70 MiB more at peak than 10); freed memory goes back to the OS after
  each call (glibc's `malloc_trim`: ~100 MiB less resident after indexing); torch runs `threads`
  intra-op threads, 1 by default: on a shared 2-core machine two threads were 2.4× *slower* than one
  (each small matrix product waits for the slower thread), and concurrent requests embed in
  parallel anyway, each in its own worker thread.
* `RemoteEmbedder`: KAITO's contract, `POST {"inputs": text}` answering a JSON list (Hugging Face
  text-embeddings-inference and the HF inference API speak it). A list of texts in `inputs` is tried
  first (TEI batches); if the endpoint refuses it, one text per request from then on. A URL whose
  path ends in `/embeddings` is spoken to as OpenAI's embeddings API (`{"input": [...], "model"}`),
  since vLLM, Ollama, LiteLLM and most hosted services serve that one.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from kaito.runtime.rag.errors import Upstream

log = logging.getLogger("kaito.runtime.rag")
PROGRESS_EVERY_S = 5.0


class Embedder(Protocol):
    mode: str  # "local" or "remote" (KAITO's metric label)
    model_id: str  # recorded with persisted indexes

    async def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def chunk_tokenizer(self) -> Any | None: ...

    def max_input_tokens(self) -> int | None: ...

    async def close(self) -> None: ...


def normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


class _Progress:
    """Logs `done/total` at most every few seconds for long embeddings (not for small requests)."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what = total, what
        self.started = self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S or (done == self.total and now - self.started >= PROGRESS_EVERY_S):
            self.last = now
            log.info("%s: %d/%d (%.0f/s)", self.what, done, self.total, done / max(now - self.started, 1e-9))


@functools.cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None (another C library): returns freed heap memory to the OS."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def release_freed_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def plan_batches(lengths: Sequence[int], batch_size: int, batch_tokens: int, multiple: int = 1) -> list[list[int]]:
    """Indices grouped into batches, shortest texts first: at most `batch_size` texts and at most
    `batch_tokens` tokens once each is padded to the batch's longest (rounded up to `multiple`); a
    text longer than the budget is a batch of its own."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        padded = -(-max(lengths[i], 1) // multiple) * multiple
        if batches and len(batches[-1]) < batch_size and (len(batches[-1]) + 1) * padded <= batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class LocalEmbedder:
    mode = "local"

    def __init__(self, model_id: str, batch_size: int = 32, *, batch_tokens: int = 4096, threads: int | None = 1) -> None:
        self.model_id = model_id
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        self.threads = threads  # None: torch's default
        self._model: Any = None
        self._tokenizer: Any = None
        self._torch: Any = None

    def load(self) -> None:
        """Load tokenizer and weights (downloads show the hub's progress bars); blocking."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        started = time.monotonic()
        log.info("loading embedding model %s", self.model_id)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_id)
        model = AutoModel.from_pretrained(self.model_id)
        model.eval()
        self._model, self._torch = model, torch
        log.info("embedding model %s loaded in %.1fs (dimension %d, max %s tokens)", self.model_id,
                 time.monotonic() - started, self._dim(), self.max_input_tokens())

    def _dim(self) -> int:
        return int(self._model.config.hidden_size)

    async def dimension(self) -> int:
        return self._dim()

    def max_input_tokens(self) -> int | None:
        limits = [getattr(self._tokenizer, "model_max_length", None),
                  getattr(self._model.config, "max_position_embeddings", None)]
        limits = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
        if not limits:
            return None
        # The tokenizer adds its special tokens ([CLS], [SEP]) around each chunk.
        return max(8, min(limits) - self._tokenizer.num_special_tokens_to_add())

    def chunk_tokenizer(self) -> Any | None:
        backend = getattr(self._tokenizer, "backend_tokenizer", None)
        if backend is None:
            return None
        copy = type(backend).from_str(backend.to_str())
        copy.no_truncation()
        copy.no_padding()
        return copy

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        out = np.empty((len(texts), self._dim()), dtype=np.float32)
        progress = _Progress(len(texts), f"embedding {len(texts)} chunks")
        limit = (self.max_input_tokens() or 512) + self._tokenizer.num_special_tokens_to_add()
        # Few distinct shapes: oneDNN caches kernels per input shape, and one per length cost ~100 MiB
        # per 1,000 chunks; padding to a multiple that still fits the model's limit keeps them few.
        multiple = next(m for m in (64, 32, 16, 8, 4, 2, 1) if limit % m == 0)
        lengths = [min(len(ids), limit) for ids in self._tokenizer(list(texts), add_special_tokens=True,
                                                                   truncation=True, max_length=limit)["input_ids"]]
        done = 0
        with torch.inference_mode():
            for rows in plan_batches(lengths, self.batch_size, self.batch_tokens, multiple):
                batch = self._tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                        pad_to_multiple_of=multiple, max_length=limit, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[rows] = pooled.float().numpy()
                done += len(rows)
                progress.update(done)
        release_freed_memory()
        return normalise(out)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self.embed_sync, list(texts))

    async def close(self) -> None:
        return None


class RemoteEmbedder:
    mode = "remote"

    def __init__(self, url: str, secret: str | None = None, model: str | None = None,
                 batch_size: int = 32, transport: Any = None) -> None:
        import httpx

        self.url = url
        self.model_id = f"remote:{url}"
        self.remote_model = model
        self.batch_size = batch_size
        self.openai_style = url.rstrip("/").endswith("/embeddings")
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=300, transport=transport)
        self._batches: bool | None = None if not self.openai_style else True
        self._dimension: int | None = None

    def chunk_tokenizer(self) -> None:
        return None

    def max_input_tokens(self) -> None:
        return None

    async def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int((await self.embed(["dimension probe"])).shape[1])
        return self._dimension

    async def _post(self, body: dict) -> Any:
        import httpx

        try:
            response = await self._client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise Upstream(f"embedding endpoint {self.url} unreachable: {exc or type(exc).__name__}") from None
        if response.status_code >= 400:
            return response
        try:
            return response.json()
        except ValueError:
            raise Upstream(f"embedding endpoint {self.url} answered with something other than JSON") from None

    @staticmethod
    def _rows(payload: Any, expected: int) -> list[list[float]] | None:
        if isinstance(payload, list) and payload and isinstance(payload[0], (int, float)):
            payload = [payload]  # one text → one flat vector
        if (isinstance(payload, list) and len(payload) == expected
                and all(isinstance(r, list) and r and isinstance(r[0], (int, float)) for r in payload)):
            return payload
        return None

    async def _one(self, text: str) -> list[float]:
        payload = await self._post({"inputs": text})
        rows = self._rows(payload, 1) if not hasattr(payload, "status_code") else None
        if rows is None:
            detail = f"HTTP {payload.status_code}" if hasattr(payload, "status_code") else "not a list of numbers"
            raise Upstream(f"embedding endpoint {self.url} gave no embedding ({detail})")
        return rows[0]

    async def _batch(self, texts: list[str]) -> list[list[float]]:
        if self.openai_style:
            body: dict[str, Any] = {"input": texts}
            if self.remote_model:
                body["model"] = self.remote_model
            payload = await self._post(body)
            try:
                data = sorted(payload["data"], key=lambda d: d.get("index", 0))
                return [d["embedding"] for d in data][: len(texts)] if len(data) == len(texts) else _fail()
            except (TypeError, KeyError, ValueError):
                status = f"HTTP {payload.status_code}" if hasattr(payload, "status_code") else "unexpected shape"
                raise Upstream(f"embeddings endpoint {self.url} gave no embeddings ({status})") from None
        if self._batches is not False:
            payload = await self._post({"inputs": texts})
            rows = None if hasattr(payload, "status_code") else self._rows(payload, len(texts))
            if rows is not None:
                self._batches = True
                return rows
            if self._batches is None:
                log.info("embedding endpoint %s does not take batches; sending one text per request", self.url)
                self._batches = False
            else:
                raise Upstream(f"embedding endpoint {self.url} refused a batch it took before")
        return [await self._one(text) for text in texts]

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        progress = _Progress(len(texts), f"embedding {len(texts)} chunks remotely")
        for start in range(0, len(texts), self.batch_size):
            rows += await self._batch(list(texts[start: start + self.batch_size]))
            progress.update(len(rows))
        if len({len(r) for r in rows}) > 1:
            raise Upstream(f"embedding endpoint {self.url} returned vectors of different lengths")
        return normalise(np.array(rows, dtype=np.float32)) if rows else np.empty((0, 0), np.float32)

    async def close(self) -> None:
        await self._client.aclose()


def _fail():
    raise ValueError("count mismatch")
