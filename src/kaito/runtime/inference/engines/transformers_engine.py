"""The transformers engine: one model, many concurrent requests, batched per decode step.

A single worker thread owns the model. Between two decode steps it admits waiting requests (up to
`max_running`, and as many as fit `max_prefill_tokens` of padded prompt), prefills them together in
one forward pass and merges them into the running batch's KV cache; each step then advances every
live row by one token, with that row's own sampling parameters. A prompt longer than the budget is
prefilled in chunks of that size, one chunk between two decode steps, so a long arrival never
stalls the running streams for more than one chunk. Rows leave the batch when they finish, hit a
stop string, or their client disconnects (cancel), so abandoned work stops at the next step.

Events leave each step in one batch: in this process, one wake-up of each asyncio loop per step
(`generate`); in the engine process (`engine_worker`), one `publish` call per step (`submit`).

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

from kaito.runtime.inference import adapters
from kaito.runtime.inference import engine as api
from kaito.runtime.inference.engines import batching, limits, loading, sampling, structured
from kaito.runtime.inference.engines.detokenize import TextStream
from kaito.runtime.inference.engines.loading import LoadedModel
from kaito.runtime.inference.engines.rows import Chunked, Outbox, Publish, Row
from kaito.runtime.inference.settings import ServerSettings

log = logging.getLogger("kaito.runtime.inference")


class TransformersEngine:
    """`EngineClient` over a transformers model with decode-step batching."""

    def __init__(self, settings: ServerSettings, publish: Publish | None = None) -> None:
        self.settings = settings
        self._outbox = Outbox(publish)  # `publish`: set in the engine process, events leave through it
        self._on_step: Callable[[int], None] | None = None
        self._load = api.ModelLoad()
        self._loaded: LoadedModel | None = None
        self._waiting: collections.deque[Row] = collections.deque()
        self._by_id: dict[str, Row] = {}
        self._running: list[Row] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._facts: limits.ModelFacts | None = None
        self._cache_kwarg = "cache"
        self._admitting: list[Row] = []
        self._chunked: Chunked | None = None
        self._grammars = limits.GrammarCache()
        self._grammar_tokenizer: structured.GrammarTokenizer | None = None
        self._prefills = self._prefilled_rows = self._aborted = 0

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
        self._begin(await self._load.run(
            lambda: asyncio.to_thread(loading.load_model, self.settings, self._load.stage)))

    def load_and_begin(self, stage: Callable[[str], None]) -> limits.ModelFacts:
        """`start` without an event loop (the engine process): load, run the batch loop, return the facts."""
        self._begin(loading.load_model(self.settings, stage))
        return self._facts

    def _begin(self, loaded: LoadedModel) -> None:
        eos = loading.build_eos_ids(loaded)
        vocab = int(loaded.model.get_output_embeddings().weight.shape[0])
        self._facts = limits.ModelFacts(adapters=loaded.adapters, max_model_len=loaded.max_model_len,
                                        vocab=vocab, eos=eos)
        self._cache_kwarg = loading.build_cache_kwarg(loaded.model)
        self._grammar_tokenizer = structured.GrammarTokenizer(loaded.tokenizer, vocab, eos)
        self._loaded = loaded
        self._thread = threading.Thread(target=self._loop, name="kaito-engine", daemon=True)
        self._thread.start()
        log.info("Engine ready (max %d running, %d queued, %d prompt tokens per prefill step, context %d tokens)",
                 self.settings.max_running, self.settings.queue_limit, self.settings.max_prefill_tokens,
                 loaded.max_model_len)

    async def shutdown(self) -> None:
        await asyncio.to_thread(self.stop)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

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
        return api.EngineStats(running=len(self._running) + (self._chunked is not None),
                               waiting=len(self._waiting), prefills=self._prefills,
                               prefilled_rows=self._prefilled_rows, aborted=self._aborted)

    def _require(self) -> LoadedModel:
        if self._loaded is None:
            raise api.EngineNotReady(self._load.state.reason)
        return self._loaded

    # --- requests --------------------------------------------------------------------------
    def check(self, request: api.GenerationRequest) -> None:
        """Reject what can never run, before any bytes are sent to the client."""
        self._require()
        limits.check_request(request, self._facts, self._grammars)

    def generate(self, request: api.GenerationRequest) -> AsyncIterator[api.TokenEvent]:
        """Queue the request now (not at the first `anext`), then stream its events."""
        return self._events(self._enqueue(request, asyncio.get_running_loop()))

    def submit(self, request: api.GenerationRequest) -> None:
        """Queue a request whose events leave through `publish` (the engine process)."""
        self._enqueue(request, None)

    def _enqueue(self, request: api.GenerationRequest, loop: asyncio.AbstractEventLoop | None) -> Row:
        self.check(request)
        loaded = self._loaded
        params = request.params
        grammar = None
        if params.json_schema is not None:
            grammar = structured.RowGrammar(self._grammar_tokenizer, self._grammars.get(params.json_schema))
        sampler = sampling.RowSampler(params=params, prompt=request.prompt_token_ids, grammar=grammar,
                                      generator=sampling.build_generator(params, loaded.device))
        seq = Row(request=request, loop=loop, events=asyncio.Queue() if loop is not None else None,
                        text=TextStream(tokenizer=loaded.tokenizer, stops=params.stop), sampler=sampler)
        with self._lock:
            self._by_id[request.request_id] = seq
            self._waiting.append(seq)
        self._wake.set()
        return seq

    async def _events(self, seq: Row) -> AsyncIterator[api.TokenEvent]:
        try:
            while True:
                item = await seq.events.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            seq.cancelled = True  # a client that went away stops its row at the next step
            self._wake.set()

    async def cancel(self, request_id: str) -> None:
        self.cancel_now(request_id)

    def cancel_now(self, request_id: str) -> None:
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
                    prefills = self._prefills
                    batch = self._drop_finished(self._admit(batch))
                    self._flush()  # first tokens out now, not after the next decode step
                    if batch is None:
                        if self._prefills == prefills:  # nothing to do (a prefill may leave more waiting)
                            self._wake.wait(timeout=0.5)
                            self._wake.clear()
                        continue
                    batch = self._decode(batch)
                except Exception as exc:  # a bug outside any one row: fail the batch, keep the server
                    log.exception("engine step failed")
                    involved = self._running + self._admitting + ([self._chunked.row] if self._chunked else [])
                    for seq in involved:
                        if not seq.finished:
                            self._fail(seq, exc)
                    self._forget(involved)
                    self._running, self._admitting, self._chunked, batch = [], [], None, None
                finally:
                    self._flush()

    def _emit(self, seq: Row, item) -> None:
        self._outbox.add(seq, item)

    def _flush(self) -> None:
        self._outbox.flush(self.stats)

    def _fail(self, seq: Row, exc: BaseException) -> None:
        log.error("request %s failed: %s", seq.request.request_id, exc)
        self._emit(seq, api.EngineError(f"generation failed: {exc}"))
        seq.cancelled = seq.finished = True

    def _forget(self, seqs: list[Row]) -> None:
        with self._lock:
            for seq in seqs:
                self._by_id.pop(seq.request.request_id, None)

    def _drop_finished(self, batch):
        gone = [i for i, s in enumerate(self._running) if s.cancelled]
        if not gone:
            return batch
        self._aborted += sum(not self._running[i].finished for i in gone)
        self._forget([self._running[i] for i in gone])
        keep = [i for i in range(len(self._running)) if i not in gone]
        self._running = [self._running[i] for i in keep]
        return batching.select_rows(batch, keep) if batch is not None else None

    def _admit(self, batch):
        """Prefill what waits, up to `max_prefill_tokens` (rows x longest prompt) before the next decode step.

        Rows are prefilled together in one forward pass; rows that arrived during that pass join a
        second one in the same step while the budget lasts (their first token should not wait for a
        decode step of the others). A prompt longer than the budget gets the step to itself, a chunk.
        """
        budget = self.settings.max_prefill_tokens
        while True:
            if self._chunked is not None:
                return self._prefill_chunk(batch)
            admitted = self._take_waiting(budget, whole_step=budget == self.settings.max_prefill_tokens)
            if not admitted:
                return batch
            first = admitted[0]
            width = max(len(s.request.prompt_token_ids) for s in admitted)
            if width > budget and first.request.params.prompt_logprobs is None:
                self._chunked = Chunked(row=first, cache=batching.build_cache(getattr(self._loaded.model, "config", None)))
                return self._prefill_chunk(batch)
            batch = self._prefill_group(batch, admitted)
            self._flush()  # these first tokens go out now, while the next group is prefilled
            budget -= len(admitted) * width
            if budget <= 0 or not self._waiting:
                return batch

    def _take_waiting(self, budget: int, whole_step: bool) -> list[Row]:
        """Waiting rows, in order, that fit `budget` together (the first always, when the step is whole)."""
        admitted: list[Row] = []
        lengths: list[int] = []
        with self._lock:
            while self._waiting and len(self._running) + len(admitted) < self.settings.max_running:
                seq = self._waiting[0]
                if seq.cancelled:
                    self._waiting.popleft()
                    self._by_id.pop(seq.request.request_id, None)
                    self._aborted += 1
                    continue
                length = len(seq.request.prompt_token_ids)
                if (admitted or not whole_step) and not batching.fits_prefill_budget([*lengths, length], budget):
                    break
                admitted.append(self._waiting.popleft())
                lengths.append(length)
        return admitted

    def _prefill_group(self, batch, admitted: list[Row]):
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

    def _forward(self, ids, mask, positions, cache, seqs: list[Row], keep: int):
        """One forward pass of the model over rows `seqs` (a seam tests use to inject failures)."""
        return self._loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                                  logits_to_keep=keep, **{self._cache_kwarg: cache},
                                  **adapters.route_rows(self._loaded.model, self._loaded.adapters,
                                                        [s.request.adapter for s in seqs]))

    def _prefill_chunk(self, batch):
        """Feed the long prompt its next chunk; once complete, sample its first token and merge it in."""
        chunk = self._chunked
        seq = chunk.row
        if seq.cancelled:
            self._chunked = None
            self._aborted += not seq.finished
            self._forget([seq])
            return batch
        tokens = seq.tokens
        end = min(chunk.done + self.settings.max_prefill_tokens, len(tokens))
        ids, mask, positions = batching.build_chunk_inputs(tokens, chunk.done, end, self._loaded.device)
        try:
            self._prefills += 1
            out = self._forward(ids, None, positions, chunk.cache, [seq], 1)
        except Exception as exc:
            self._chunked = None
            self._fail(seq, exc)
            self._forget([seq])
            return batch
        chunk.done = end
        if end < len(tokens):
            return batch
        self._chunked = None
        self._prefilled_rows += 1
        self._running.append(seq)
        self._sample_and_emit([seq], out.logits[:, -1, :])
        return batching.merge_batches(batch, batching.BatchTensors(cache=chunk.cache, attention_mask=mask,
                                                                   positions=[end]))

    def _prefill(self, seqs: list[Row]):
        """Run `seqs` from their full token lists; sample their next token; return their batch."""
        loaded = self._loaded
        rows = [s.tokens for s in seqs]
        ids, mask, positions = batching.build_prefill_inputs(rows, loaded.tokenizer.pad_token_id, loaded.device)
        wants_prompt = [s.request.params.prompt_logprobs is not None and not s.sampler.generated for s in seqs]
        cache = batching.build_cache(getattr(loaded.model, "config", None))
        self._prefills += 1
        unpadded = len({len(r) for r in rows}) == 1
        out = self._forward(ids, None if unpadded else mask, positions, cache, seqs, 0 if any(wants_prompt) else 1)
        self._prefilled_rows += len(seqs)
        logits = out.logits
        prompt_logprobs = {}
        for i, seq in enumerate(seqs):
            if wants_prompt[i]:
                width = len(rows[i])
                prompt_logprobs[i] = sampling.compute_prompt_logprobs(
                    logits[i, -width:], rows[i], seq.request.params.prompt_logprobs or 0)
        self._sample_and_emit(seqs, logits[:, -1, :], prompt_logprobs)
        return batching.BatchTensors(cache=cache, attention_mask=mask, positions=[len(r) for r in rows])

    def _prefill_isolated(self, seqs: list[Row]):
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
        # no row padded (one row, or rows of one length): the model needs no mask to build
        unpadded = min(batch.positions) == batch.attention_mask.shape[1]
        try:
            out = self._forward(ids, None if unpadded else mask, positions, batch.cache, self._running, 1)
        except Exception as exc:
            log.warning("a decode step failed (%s); re-running its %d rows one by one", exc, batch.size)
            return self._rebuild(self._running)
        batch = dataclasses.replace(batch, attention_mask=mask, positions=[p + 1 for p in batch.positions])
        self._sample_and_emit(self._running, out.logits[:, -1, :])
        return batch

    def _rebuild(self, seqs: list[Row]):
        """A fresh batch for `seqs`, each prefilled alone (this step's token sampled); failures dropped."""
        live = [s for s in seqs if not s.cancelled]
        batch, survivors = self._prefill_isolated(live) if live else (None, [])
        self._forget([s for s in seqs if s not in survivors])
        self._running = survivors
        return batch

    def _sample_and_emit(self, seqs: list[Row], logits, prompt_logprobs: dict | None = None) -> None:
        eos = self._facts.eos
        banned = [eos if len(s.sampler.generated) < s.request.params.min_tokens else () for s in seqs]
        choices = sampling.choose_tokens(logits, [s.sampler for s in seqs], banned)
        for i, (seq, choice) in enumerate(zip(seqs, choices, strict=True)):
            if seq.cancelled:
                continue
            if isinstance(choice, BaseException):
                self._fail(seq, choice)
                continue
            token, logprob = choice
            try:
                self._emit(seq, seq.advance(token, logprob, (prompt_logprobs or {}).get(i), eos))
            except Exception as exc:  # e.g. a tokenizer that cannot decode this token
                self._fail(seq, exc)
