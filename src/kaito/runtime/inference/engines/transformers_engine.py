"""The transformers engine: one model, many concurrent requests, batched per decode step.

A single worker thread owns the model. Between two decode steps it admits waiting requests (up to
`max_running`), prefills them together and merges them into the running batch's KV cache; each
step then advances every live row by one token, with that row's own sampling parameters. Rows
leave the batch when they finish, hit a stop string, or their client disconnects (cancel), so
abandoned work stops at the next step. The asyncio side only queues requests and reads events,
which each step hands over in one batch (one wake-up of the event loop per step, not per row).

One request never fails another: if a batched forward pass raises, each row is re-run alone
(prefilled again from its prompt and the tokens it has so far, which yields this step's logits),
and only the rows that still fail get an error; a row whose sampling raises fails alone.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.adapters import COMBINED_ADAPTER
from kaito.runtime.inference.engines import batching, loading, sampling, structured
from kaito.runtime.inference.engines.detokenize import TextStream
from kaito.runtime.inference.engines.loading import LoadedModel
from kaito.runtime.inference.settings import ServerSettings

log = logging.getLogger("kaito.runtime.inference")
_DONE = object()


@dataclass(kw_only=True)
class _Sequence:
    request: api.GenerationRequest
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue
    text: TextStream
    sampler: sampling.RowSampler
    cancelled: bool = False

    @property
    def tokens(self) -> list[int]:
        """Everything this row has fed or will feed the model: prompt, then output."""
        return list(self.request.prompt_token_ids) + self.sampler.generated


def _deliver(items: list[tuple[asyncio.Queue, object]]) -> None:
    for queue, item in items:
        queue.put_nowait(item)


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
        self._vocab = 0
        self._cache_kwarg = "cache"
        self._outbox: list[tuple[_Sequence, object]] = []
        self._admitting: list[_Sequence] = []
        self._grammars: dict[str, str] = {}
        self._grammar_tokenizer: structured.GrammarTokenizer | None = None

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
        loaded = await self._load.run(lambda: asyncio.to_thread(loading.load_model, self.settings, self._load.stage))
        self._eos = loading.build_eos_ids(loaded)
        self._vocab = int(loaded.model.get_output_embeddings().weight.shape[0])
        self._cache_kwarg = loading.build_cache_kwarg(loaded.model)
        self._grammar_tokenizer = structured.GrammarTokenizer(loaded.tokenizer, self._vocab, self._eos)
        self._loaded = loaded
        self._thread = threading.Thread(target=self._loop, name="kaito-engine", daemon=True)
        self._thread.start()
        log.info("Engine ready in %.1fs (max %d running, %d queued, context %d tokens)",
                 self._load.state.seconds, self.settings.max_running, self.settings.queue_limit,
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
        params = request.params
        if request.adapter is not None and request.adapter not in loaded.adapters:
            raise api.UnknownModel(f"the model `{request.adapter}` does not exist")
        total = len(request.prompt_token_ids) + params.max_tokens
        if total > loaded.max_model_len:
            raise api.ContextTooLong(
                f"This model's maximum context length is {loaded.max_model_len} tokens; the request "
                f"needs {total} ({len(request.prompt_token_ids)} in the prompt, "
                f"{params.max_tokens} to generate)")
        if not request.prompt_token_ids:
            raise api.InvalidRequest("the prompt is empty")
        if not all(0 <= t < self._vocab for t in request.prompt_token_ids):
            raise api.InvalidRequest(f"the prompt holds token ids outside the vocabulary (0..{self._vocab - 1})")
        if not all(0 <= t < self._vocab for t, _ in params.logit_bias):
            raise api.InvalidRequest(f"logit_bias: token ids must be in the vocabulary (0..{self._vocab - 1})")
        if params.json_schema is not None:
            self._grammar(params.json_schema)

    def _grammar(self, schema: str) -> str:
        found = self._grammars.get(schema)
        if found is None:
            found = structured.build_grammar(schema)
            if len(self._grammars) > 64:
                self._grammars.clear()
            self._grammars[schema] = found
        return found

    def generate(self, request: api.GenerationRequest) -> AsyncIterator[api.TokenEvent]:
        """Queue the request now (not at the first `anext`), then stream its events."""
        self.check(request)
        loaded = self._loaded
        params = request.params
        grammar = None
        if params.json_schema is not None:
            grammar = structured.RowGrammar(self._grammar_tokenizer, self._grammar(params.json_schema))
        sampler = sampling.RowSampler(params=params, prompt=request.prompt_token_ids, grammar=grammar,
                                      generator=sampling.build_generator(params, loaded.device))
        seq = _Sequence(request=request, loop=asyncio.get_running_loop(), events=asyncio.Queue(),
                        text=TextStream(tokenizer=loaded.tokenizer, stops=params.stop), sampler=sampler)
        with self._lock:
            self._by_id[request.request_id] = seq
            self._waiting.append(seq)
        self._wake.set()
        return self._events(seq)

    async def _events(self, seq: _Sequence) -> AsyncIterator[api.TokenEvent]:
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
                    self._flush()  # first tokens out now, not after the next decode step
                    if batch is None:
                        self._wake.wait(timeout=0.5)
                        self._wake.clear()
                        continue
                    batch = self._decode(batch)
                except Exception as exc:  # a bug outside any one row: fail the batch, keep the server
                    log.exception("engine step failed")
                    for seq in self._running + self._admitting:
                        self._fail(seq, exc)
                    self._forget(self._running + self._admitting)
                    self._running, self._admitting, batch = [], [], None
                finally:
                    self._flush()

    def _emit(self, seq: _Sequence, item) -> None:
        self._outbox.append((seq, item))

    def _flush(self) -> None:
        """Hand this step's events to the event loop(s) in one call each."""
        if not self._outbox:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for seq, item in self._outbox:
            by_loop.setdefault(seq.loop, []).append((seq.events, item))
        self._outbox = []
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # that loop has closed: nobody is listening any more
                pass

    def _fail(self, seq: _Sequence, exc: BaseException) -> None:
        log.error("request %s failed: %s", seq.request.request_id, exc)
        self._emit(seq, api.EngineError(f"generation failed: {exc}"))
        seq.cancelled = True

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
        self._admitting = admitted  # a bug in the step below fails them too, instead of losing them
        # rows that want their prompt's logprobs keep every position's logits: prefill those alone
        alone = [s for s in admitted if s.request.params.prompt_logprobs is not None]
        together = [s for s in admitted if s.request.params.prompt_logprobs is None]
        new, survivors = self._prefill_isolated(together) if together else (None, [])
        for seq in alone:
            batch_of_one, kept = self._prefill_isolated([seq])
            new = batching.merge_batches(new, batch_of_one) if batch_of_one is not None else new
            survivors += kept
        self._admitting = []
        self._forget([s for s in admitted if s not in survivors])
        self._running.extend(survivors)
        return batching.merge_batches(batch, new) if new is not None else batch

    def _forward(self, ids, mask, positions, cache, seqs: list[_Sequence], keep: int):
        """One forward pass of the model over rows `seqs` (a seam tests use to inject failures)."""
        return self._loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                  logits_to_keep=keep, **{self._cache_kwarg: cache},
                                  **self._adapter_kwargs(seqs))

    def _prefill(self, seqs: list[_Sequence]):
        """Run `seqs` from their full token lists; sample their next token; return their batch."""
        loaded = self._loaded
        rows = [s.tokens for s in seqs]
        ids, mask, positions = batching.build_prefill_inputs(rows, loaded.tokenizer.pad_token_id, loaded.device)
        wants_prompt = [s.request.params.prompt_logprobs is not None and not s.sampler.generated for s in seqs]
        cache = batching.build_cache(getattr(loaded.model, "config", None))
        out = self._forward(ids, mask, positions, cache, seqs, 0 if any(wants_prompt) else 1)
        logits = out.logits
        prompt_logprobs = {}
        for i, seq in enumerate(seqs):
            if wants_prompt[i]:
                width = len(rows[i])
                prompt_logprobs[i] = sampling.compute_prompt_logprobs(
                    logits[i, -width:], rows[i], seq.request.params.prompt_logprobs or 0)
        self._sample_and_emit(seqs, logits[:, -1, :], prompt_logprobs)
        return batching.BatchTensors(cache=cache, attention_mask=mask, positions=[len(r) for r in rows])

    def _prefill_isolated(self, seqs: list[_Sequence]):
        """Prefill `seqs` together; if that fails, each alone, failing only those that fail alone.

        Returns the batch and the rows in it, in order (a row whose sampling failed is in it, marked
        cancelled, and leaves at the next step like a finished one).
        """
        try:
            return self._prefill(seqs), list(seqs)
        except Exception as exc:
            if len(seqs) == 1:
                self._fail(seqs[0], exc)
                return None, []
            log.warning("a batched forward pass failed (%s); running its %d rows one by one", exc, len(seqs))
        batch, survivors = None, []
        for seq in seqs:
            if seq.cancelled:
                continue
            try:
                batch = batching.merge_batches(batch, self._prefill([seq]))
                survivors.append(seq)
            except Exception as exc:
                self._fail(seq, exc)
        return batch, survivors

    def _decode(self, batch):
        if self._on_step is not None:
            self._on_step(batch.size)
        last = [s.sampler.generated[-1] for s in self._running]
        ids, mask, positions = batching.build_decode_inputs(batch, last)
        try:
            out = self._forward(ids, mask, positions, batch.cache, self._running, 1)
        except Exception as exc:
            log.warning("a decode step failed (%s); re-running its %d rows one by one", exc, batch.size)
            return self._rebuild(self._running)
        batch = dataclasses.replace(batch, attention_mask=mask, positions=[p + 1 for p in batch.positions])
        self._sample_and_emit(self._running, out.logits[:, -1, :])
        return batch

    def _rebuild(self, seqs: list[_Sequence]):
        """A fresh batch for `seqs`, each prefilled alone (this step's token sampled); failures dropped."""
        live = [s for s in seqs if not s.cancelled]
        batch, survivors = self._prefill_isolated(live) if live else (None, [])
        self._forget([s for s in seqs if s not in survivors])
        self._running = survivors
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

    def _sample_and_emit(self, seqs: list[_Sequence], logits, prompt_logprobs: dict | None = None) -> None:
        eos = self._eos
        banned = [eos if len(s.sampler.generated) < s.request.params.min_tokens else () for s in seqs]
        choices = sampling.choose_tokens(logits, [s.sampler for s in seqs], banned)
        for i, (seq, choice) in enumerate(zip(seqs, choices, strict=True)):
            if seq.cancelled:
                continue
            if isinstance(choice, BaseException):
                self._fail(seq, choice)
                continue
            try:
                self._advance(seq, *choice, (prompt_logprobs or {}).get(i))
            except Exception as exc:  # e.g. a tokenizer that cannot decode this token
                self._fail(seq, exc)

    def _advance(self, seq: _Sequence, token: int, logprob, prompt_logprobs) -> None:
        params = seq.request.params
        seq.sampler.record(token)
        generated = len(seq.sampler.generated)
        is_eos = token in self._eos and (not params.ignore_eos or seq.sampler.grammar is not None)
        grammar_done = seq.sampler.grammar is not None and not is_eos and seq.sampler.grammar.accept(token)
        delta, stopped = ("", False) if is_eos else seq.text.push(token)
        finish = None
        if stopped or is_eos or grammar_done:
            finish = "stop"
        elif generated >= params.max_tokens:
            finish = "length"
        if finish is not None and not stopped:
            delta += seq.text.flush()
        self._emit(seq, api.TokenEvent(token_ids=(token,), text=delta, finish_reason=finish,
                                       prompt_tokens=len(seq.request.prompt_token_ids),
                                       completion_tokens=generated,
                                       logprobs=(logprob,) if logprob is not None else (),
                                       prompt_logprobs=prompt_logprobs))
        if finish is not None:
            seq.cancelled = True  # removed from the batch before the next step
