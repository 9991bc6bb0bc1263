"""The transformers engine in a child process, behind the same `EngineClient` as the in-process one.

Why: in one process, the HTTP event loop and the model's Python (HF modelling, sampling, text) share
one GIL, and every step's hand-over waits on it; vLLM runs its API server and its engine core as
two processes for the same reason. Here the server process keeps HTTP, tokenizing, chat templates
and the checks a request meets before its answer starts (`limits`, from the facts the engine sends
once loaded); the child (`engine_worker`) owns the model and the batch loop.

Each request is one `add` message; its events come back in one message per engine step, and a
client that goes away sends a `cancel` that the engine acts on at its next step. If the child dies,
every open request ends with a 503 error, new ones get 503, and `/health` fails with the reason, so
a liveness probe restarts the pod: nothing waits forever on a dead engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.engines import limits, loading
from kaito.runtime.inference.engines.engine_worker import FRAME, encode
from kaito.runtime.inference.settings import ServerSettings

log = logging.getLogger("kaito.runtime.inference")
WORKER = "kaito.runtime.inference.engines.engine_worker"


class EngineProcessExited(api.EngineNotReady):
    """The engine process is gone: the request cannot be served by this server any more (503)."""


class ProcessEngine:
    """`EngineClient` whose engine runs in a child process (`engine_worker`)."""

    def __init__(self, settings: ServerSettings, command: Sequence[str] | None = None) -> None:
        self.settings = settings
        self._command = list(command) if command is not None else [sys.executable, "-m", WORKER]
        self._load = api.ModelLoad()
        self._facts: limits.ModelFacts | None = None
        self._tokenizer = None
        self._grammars = limits.GrammarCache()
        self._proc: subprocess.Popen | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.Task | None = None
        self._ready: asyncio.Future | None = None
        self._streams: dict[str, asyncio.Queue] = {}
        self._stats = api.EngineStats()
        self._on_step: Callable[[int], None] | None = None
        self._exited: str | None = None  # why the engine process is gone
        self._stopping = False

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def name(self) -> api.EngineName:
        return api.EngineName.TRANSFORMERS

    @property
    def pid(self) -> int | None:
        """The engine process's id (None before it starts)."""
        return self._proc.pid if self._proc is not None else None

    def load_state(self) -> api.LoadState:
        state = self._load.state
        if self._exited is not None and self._facts is not None and not self._stopping:
            return api.LoadState(ready=False, stage="engine process exited", error=self._exited,
                                 seconds=state.seconds)
        return state

    def stats(self) -> api.EngineStats:
        return self._stats

    def observe_steps(self, callback: Callable[[int], None]) -> None:
        self._on_step = callback

    async def start(self) -> None:
        """Start the engine process and load the tokenizer here while it loads the model."""
        await self._load.run(self._spawn)

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            # started from the event loop's thread, which lives as long as the server: the child's
            # death-with-parent signal follows the thread that started it
            self._proc = subprocess.Popen([*self._command, str(theirs.fileno()), str(os.getpid())],
                                          pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self._ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(reader))
        self._send(("settings", self.settings.model_dump(mode="json")))
        try:
            self._tokenizer = await asyncio.to_thread(loading.load_tokenizer, self.settings)
            self._facts = await self._ready
        except BaseException:
            await self._end_process()
            raise

    async def shutdown(self) -> None:
        self._stopping = True
        await self._end_process()

    async def _end_process(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if self._facts is not None:
                self._send(("stop",))
            else:
                proc.kill()  # still loading: nothing to finish (it ignores SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._writer is not None:
            self._writer.close()

    async def health(self) -> bool:
        return (self._facts is not None and self._exited is None and self._proc is not None
                and self._proc.poll() is None)

    def model_info(self) -> api.ModelInfo:
        facts = self._require()
        return api.ModelInfo(served_model_name=self.settings.model_name, adapters=facts.adapters,
                             max_model_len=facts.max_model_len, engine=self.name,
                             chat_template=getattr(self._tokenizer, "chat_template", None))

    def tokenizer(self):
        self._require()
        return self._tokenizer

    def _require(self) -> limits.ModelFacts:
        if self._facts is None:
            raise api.EngineNotReady(self._load.state.reason)
        if self._exited is not None:
            raise EngineProcessExited(self._exited)
        return self._facts

    # --- requests --------------------------------------------------------------------------
    def check(self, request: api.GenerationRequest) -> None:
        limits.check_request(request, self._require(), self._grammars)

    def generate(self, request: api.GenerationRequest) -> AsyncIterator[api.TokenEvent]:
        """Send the request to the engine now; stream what comes back for it."""
        self.check(request)
        queue: asyncio.Queue = asyncio.Queue()
        self._streams[request.request_id] = queue
        self._send(("add", request))
        return self._events(request.request_id, queue)

    async def _events(self, request_id: str, queue: asyncio.Queue) -> AsyncIterator[api.TokenEvent]:
        ended = False
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    ended = True
                    raise item
                yield item
                if item.finish_reason is not None:
                    ended = True
                    return
        finally:
            if self._streams.pop(request_id, None) is not None and not ended:
                self._send(("cancel", request_id))  # a client that went away stops its row in the engine

    async def cancel(self, request_id: str) -> None:
        if self._streams.pop(request_id, None) is not None:  # also a stream that was never read
            self._send(("cancel", request_id))

    def _send(self, message: object) -> None:
        if self._writer is not None and self._exited is None and not self._writer.is_closing():
            self._writer.write(encode(message))

    # --- what the engine process sends -----------------------------------------------------
    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = FRAME.unpack(await reader.readexactly(FRAME.size))
                self._dispatch(pickle.loads(await reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the engine process closed its end: it has exited or is exiting
        except Exception:
            log.exception("unreadable message from the engine process")
            if self._proc is not None:
                self._proc.kill()
        await self._engine_gone()

    def _dispatch(self, message) -> None:
        kind = message[0]
        if kind == "step":
            _, items, stats, steps = message
            for request_id, item in items:
                queue = self._streams.get(request_id)
                if queue is not None:
                    queue.put_nowait(item)
            self._stats = stats
            if self._on_step is not None:
                for rows in steps:
                    self._on_step(rows)
        elif kind == "stage":
            self._load.stage(message[1])
        elif kind == "ready":
            self._ready.set_result(message[1])
        elif kind == "failed":
            self._ready.set_exception(loading.LoadError(message[1]))

    async def _engine_gone(self) -> None:
        try:
            code = await asyncio.to_thread(self._proc.wait, 10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = await asyncio.to_thread(self._proc.wait)
        reason = f"the engine process exited (exit code {code}); restart the server"
        self._exited = reason
        if not self._stopping:
            log.error("%s", reason)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(loading.LoadError(f"the engine process exited while loading (exit code {code})"))
        error = EngineProcessExited(reason)
        for queue in self._streams.values():
            queue.put_nowait(error)
        self._stats = api.EngineStats(prefills=self._stats.prefills, prefilled_rows=self._stats.prefilled_rows,
                                      aborted=self._stats.aborted)
