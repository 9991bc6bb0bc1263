"""Servers over the session's tiny model, started once per module on 127.0.0.1 (port 0).

`server` is the main one: an adapter `alpha` (a LoRA built here with non-zero weights) sits in its
adapters directory with strength 0, so the default model must answer like the base model while
`model: alpha` must not. `mixed_server` serves the same adapter at strength 1 or 0.5, so a test
can tell a mix that was applied from one that was ignored. `gated_server` wraps the engine so a test can hold loading and admission.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from kaito.runtime.inference.embedded import start_server
from kaito.runtime.inference.engines.transformers_engine import TransformersEngine
from kaito.runtime.inference.settings import ServerSettings
from tests.support.lora import build_lora_adapter

SERVED = "tiny"


@pytest.fixture(scope="session")
def adapters_dir(tiny_model, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("adapters")
    build_lora_adapter(tiny_model.path, root / "alpha")
    return root


@pytest.fixture(scope="session")
def server(tiny_model, adapters_dir):
    settings = ServerSettings(model=tiny_model.repo_id, served_model_name=SERVED, adapters_dir=adapters_dir,
                              adapter_strengths={"alpha": 0.0}, host="127.0.0.1", port=0, max_running=16)
    running = start_server(settings)
    running.wait_ready()
    yield running
    running.stop()


@pytest.fixture(scope="module", params=[1.0, 0.5], ids=["strength1", "strength0.5"])
def mixed_server(request, tiny_model, adapters_dir):
    settings = ServerSettings(model=tiny_model.repo_id, served_model_name=SERVED, adapters_dir=adapters_dir,
                              adapter_strengths={"alpha": request.param}, host="127.0.0.1", port=0, max_running=4)
    running = start_server(settings)
    running.wait_ready()
    yield request.param, running
    running.stop()


class GatedEngine(TransformersEngine):
    """Loading waits for `load_gate`; the batch loop admits nothing while `admit_gate` is clear."""

    def __init__(self, settings: ServerSettings) -> None:
        super().__init__(settings)
        self.load_gate = threading.Event()
        self.admit_gate = threading.Event()
        self.admit_gate.set()

    async def start(self) -> None:
        await asyncio.to_thread(self.load_gate.wait, 60)
        await super().start()

    def _admit(self, batch):
        if not self.admit_gate.is_set():
            return batch
        return super()._admit(batch)


@pytest.fixture(scope="module")
def gated_server(tiny_model):
    settings = ServerSettings(model=str(tiny_model.path), served_model_name=SERVED, adapters_dir=None,
                              pipeline="conversational", api_key="sekret", host="127.0.0.1", port=0,
                              max_running=2, max_queued=2)
    engine = GatedEngine(settings)
    running = start_server(settings, engine)
    yield running
    engine.load_gate.set()
    engine.admit_gate.set()
    running.stop()


POISON = 999  # a prompt holding this token id makes every forward pass that includes its row fail


class PoisonEngine(GatedEngine):
    """Fails any forward pass over a row whose prompt holds `POISON`, once that row has `after` tokens:
    0 fails its prefill (admitted with others), 2 fails a later decode step of the whole batch."""

    after = 0

    def _forward(self, ids, mask, positions, cache, seqs, keep):
        if any(POISON in s.request.prompt_token_ids and len(s.sampler.generated) >= self.after for s in seqs):
            raise RuntimeError("injected failure for the poisoned row")
        return super()._forward(ids, mask, positions, cache, seqs, keep)


@pytest.fixture(scope="module")
def poison_server(tiny_model):
    settings = ServerSettings(model=str(tiny_model.path), served_model_name=SERVED, adapters_dir=None,
                              host="127.0.0.1", port=0, max_running=8)
    engine = PoisonEngine(settings)
    engine.load_gate.set()
    running = start_server(settings, engine)
    running.wait_ready()
    yield running
    engine.admit_gate.set()
    running.stop()


@pytest.fixture(scope="module")
def small_queue_server(tiny_model):
    settings = ServerSettings(model=str(tiny_model.path), served_model_name=SERVED, adapters_dir=None,
                              host="127.0.0.1", port=0, max_running=4, max_queued=4)
    running = start_server(settings)
    running.wait_ready()
    yield running
    running.stop()
