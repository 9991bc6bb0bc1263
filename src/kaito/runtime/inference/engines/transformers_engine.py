"""The transformers engine: one model, many concurrent requests, batched per decode step.

A single worker thread owns the model. Between two decode steps it admits waiting requests (up to
`max_running`), prefills them together and merges them into the running batch's KV cache; each
step then advances every live row by one token, with that row's own sampling parameters. Rows
leave the batch when they finish, hit a stop string, or their client disconnects (cancel), so
abandoned work stops at the next step. The asyncio side only queues requests and reads events.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.adapters import COMBINED_ADAPTER
from kaito.runtime.inference.engines import batching, sampling
from kaito.runtime.inference.engines.loading import LoadedModel
from kaito.runtime.inference.settings import ServerSettings

log = logging.getLogger("kaito.runtime.inference")
_DONE = object()


@dataclass(kw_only=True)
class _Sequence:
    request: api.GenerationRequest
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue
    text: sampling.TextStream
    generator: object = None
    generated: list[int] = field(default_factory=list)
    cancelled: bool = False

    def emit(self, item) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, item)


class TransformersEngine:
    """`EngineClient` over a transformers model with decode-step batching."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._on_step: Callable[[int], None] | None = None
        self._load = api.ModelLoad()
        self._loaded: LoadedModel | None = None
        self._waiting: collections.deque[_Sequence] = collections.deque()
        self._by_id: dict[str, _Sequence] = {}
        self._running: list[_Sequence] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._eos: tuple[int, ...] = ()
        self._cache_kwarg = "cache"

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def name(self) -> api.EngineName:
        return api.EngineName.TRANSFORMERS

    def load_state(self) -> api.LoadState:
        return self._load.state

    def observe_steps(self, callback: Callable[[int], None]) -> None:
        self._on_step = callback

    async def start(self) -> None:
        """Load in a thread (the port is already open), then run the batch loop."""
        from kaito.runtime.inference.engines.loading import load_model

        loaded = await self._load.run(lambda: asyncio.to_thread(load_model, self.settings, self._load.stage))
        self._eos = build_eos_ids(loaded)
        self._cache_kwarg = build_cache_kwarg(loaded.model)
        self._loaded = loaded
        self._thread = threading.Thread(target=self._loop, name="kaito-engine", daemon=True)
        self._thread.start()
        log.info("Engine ready in %.1fs (max %d running, %d queued, context %d tokens)",
                 self._load.state.seconds, self.settings.max_running, self.settings.max_queued,
                 loaded.max_model_len)

    async def shutdown(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

    async def health(self) -> bool:
        return self._loaded is not None and self._thread is not None and self._thread.is_alive()

    def model_info(self) -> api.ModelInfo:
        loaded = self._require()
        return api.ModelInfo(served_model_name=self.settings.model_name, adapters=loaded.adapters,
                             max_model_len=loaded.max_model_len, engine=self.name,
                             chat_template=getattr(loaded.tokenizer, "chat_template", None))

    def tokenizer(self):
        return self._require().tokenizer

    def stats(self) -> api.EngineStats:
        return api.EngineStats(running=len(self._running), waiting=len(self._waiting))

    def _require(self) -> LoadedModel:
        if self._loaded is None:
            raise api.EngineNotReady(self._load.state.reason)
        return self._loaded

    # --- requests --------------------------------------------------------------------------
    def check(self, request: api.GenerationRequest) -> None:
        """Reject what can never run, before any bytes are sent to the client."""
        loaded = self._require()
        if request.adapter is not None and request.adapter not in loaded.adapters:
            raise api.UnknownModel(f"the model `{request.adapter}` does not exist")
        total = len(request.prompt_token_ids) + request.params.max_tokens
        if total > loaded.max_model_len:
            raise api.ContextTooLong(
                f"This model's maximum context length is {loaded.max_model_len} tokens; the request "
                f"needs {total} ({len(request.prompt_token_ids)} in the prompt, "
                f"{request.params.max_tokens} to generate)")
        if not request.prompt_token_ids:
            raise api.InvalidRequest("the prompt is empty")
        vocab = getattr(loaded.model.config, "vocab_size", None)
        if vocab and not all(0 <= t < vocab for t in request.prompt_token_ids):
            raise api.InvalidRequest(f"the prompt holds token ids outside the vocabulary (0..{vocab - 1})")
        if len(self._waiting) >= self.settings.max_queued:
            raise api.QueueFull(f"the server is at capacity ({self.settings.max_queued} requests queued)")

    async def generate(self, request: api.GenerationRequest) -> AsyncIterator[api.TokenEvent]:
        self.check(request)
        loaded = self._loaded
        seq = _Sequence(request=request, loop=asyncio.get_running_loop(), events=asyncio.Queue(),
                        text=sampling.TextStream(tokenizer=loaded.tokenizer, stops=request.params.stop),
                        generator=sampling.build_generator(request.params, loaded.device))
        with self._lock:
            self._by_id[request.request_id] = seq
            self._waiting.append(seq)
        self._wake.set()
        try:
            while True:
                item = await seq.events.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            seq.cancelled = True  # a client that went away stops its row at the next step
            self._wake.set()

    async def cancel(self, request_id: str) -> None:
        seq = self._by_id.get(request_id)
        if seq is not None:
            seq.cancelled = True
            self._wake.set()

    # --- the batch loop (worker thread) ------------------------------------------------------
    def _loop(self) -> None:
        import torch

        batch: batching.BatchTensors | None = None
        with torch.inference_mode():
            while not self._stopping:
                try:
                    batch = self._drop_finished(batch)
                    batch = self._drop_finished(self._admit(batch))
                    if batch is None:
                        self._wake.wait(timeout=0.5)
                        self._wake.clear()
                        continue
                    batch = self._decode(batch)
                except Exception as exc:  # a failed step fails its requests, never the server
                    log.exception("engine step failed")
                    for seq in self._running:
                        seq.emit(api.EngineError(f"generation failed: {exc}"))
                    self._forget(self._running)
                    self._running, batch = [], None

    def _forget(self, seqs: list[_Sequence]) -> None:
        with self._lock:
            for seq in seqs:
                self._by_id.pop(seq.request.request_id, None)

    def _drop_finished(self, batch):
        gone = [i for i, s in enumerate(self._running) if s.cancelled]
        if not gone:
            return batch
        self._forget([self._running[i] for i in gone])
        keep = [i for i in range(len(self._running)) if i not in gone]
        self._running = [self._running[i] for i in keep]
        return batching.select_rows(batch, keep) if batch is not None else None

    def _admit(self, batch):
        admitted: list[_Sequence] = []
        with self._lock:
            while self._waiting and len(self._running) + len(admitted) < self.settings.max_running:
                seq = self._waiting.popleft()
                if seq.cancelled:
                    self._by_id.pop(seq.request.request_id, None)
                else:
                    admitted.append(seq)
        if not admitted:
            return batch
        loaded = self._loaded
        prompts = [list(s.request.prompt_token_ids) for s in admitted]
        ids, mask, positions = batching.build_prefill_inputs(prompts, loaded.tokenizer.pad_token_id,
                                                             loaded.device)
        from transformers import DynamicCache

        self._running.extend(admitted)  # from here a failed step fails them too, instead of losing them
        cache = DynamicCache(config=getattr(loaded.model, "config", None))
        out = loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                           logits_to_keep=1, **{self._cache_kwarg: cache}, **self._adapter_kwargs(admitted))
        new = batching.BatchTensors(cache=cache, attention_mask=mask, positions=[len(p) for p in prompts])
        self._sample_and_emit(admitted, out.logits[:, -1, :])
        return batching.merge_batches(batch, new)

    def _decode(self, batch):
        if self._on_step is not None:
            self._on_step(batch.size)
        loaded = self._loaded
        last = [s.generated[-1] for s in self._running]
        ids, mask, positions = batching.build_decode_inputs(batch, last)
        out = loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                           **{self._cache_kwarg: batch.cache}, **self._adapter_kwargs(self._running))
        batch = dataclasses.replace(batch, attention_mask=mask, positions=[p + 1 for p in batch.positions])
        self._sample_and_emit(self._running, out.logits[:, -1, :])
        return batch

    def _adapter_kwargs(self, seqs: list[_Sequence]) -> dict:
        if not self._loaded.adapters:
            return {}
        names = [s.request.adapter or COMBINED_ADAPTER for s in seqs]
        if len(set(names)) == 1:
            # one adapter for the whole batch: switch to it rather than pay PEFT's per-row split
            model = self._loaded.model
            if model.active_adapter != names[0]:
                model.set_adapter(names[0])
            return {}
        return {"adapter_names": names}

    def _sample_and_emit(self, seqs: list[_Sequence], logits) -> None:
        eos = self._eos
        rows = []
        for seq in seqs:
            params = seq.request.params
            banned = eos if len(seq.generated) < params.min_tokens else ()
            history = list(seq.request.prompt_token_ids) + seq.generated if params.repetition_penalty != 1.0 else []
            rows.append((params, history, seq.generator, banned))
        chosen = sampling.compute_next_tokens(logits, rows)
        for seq, token in zip(seqs, chosen, strict=True):
            if seq.cancelled:
                continue
            seq.generated.append(token)
            params = seq.request.params
            finish = None
            is_eos = token in eos and not params.ignore_eos
            delta, stopped = ("", False) if is_eos else seq.text.push(token)
            if stopped or is_eos:
                finish = "stop"
            elif len(seq.generated) >= params.max_tokens:
                finish = "length"
            if finish is not None and not stopped:
                delta += seq.text.flush()
            seq.emit(api.TokenEvent(token_ids=(token,), text=delta, finish_reason=finish,
                                    prompt_tokens=len(seq.request.prompt_token_ids),
                                    completion_tokens=len(seq.generated)))
            if finish is not None:
                seq.cancelled = True  # removed from the batch before the next step


def build_cache_kwarg(model) -> str:
    """transformers 5.x renames `past_key_values` to `cache`; remote-code models may not follow."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def build_eos_ids(loaded) -> tuple[int, ...]:
    """Every id that ends a sequence: generation config, model config and tokenizer may differ."""
    ids: set[int] = set()
    for source in (getattr(loaded.model, "generation_config", None), getattr(loaded.model, "config", None),
                   loaded.tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    return tuple(sorted(ids))

