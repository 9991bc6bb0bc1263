"""The app needs nothing from an engine beyond `EngineClient`: a fake with only those members serves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from fastapi.testclient import TestClient

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.app import create_app
from kaito.runtime.inference.settings import ServerSettings


class WordTokenizer:
    """One token per character code; a chat template that joins the messages."""

    chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"

    def __call__(self, text: str, add_special_tokens: bool = True):
        return type("Encoded", (), {"input_ids": [ord(c) % 200 + 1 for c in text]})()

    def apply_chat_template(self, messages, add_generation_prompt: bool, tokenize: bool) -> str:
        return "".join(m["content"] for m in messages)


class StrictEngine:
    """Exactly the protocol's members (`__slots__` forbids anything an app might set on it)."""

    __slots__ = ("_state", "_steps", "_tokenizer")

    def __init__(self) -> None:
        self._state = api.LoadState()
        self._steps: list[Callable[[int], None]] = []
        self._tokenizer = WordTokenizer()

    @property
    def name(self) -> api.EngineName:
        return api.EngineName.TRANSFORMERS

    def load_state(self) -> api.LoadState:
        return self._state

    def stats(self) -> api.EngineStats:
        return api.EngineStats(running=0, waiting=0)

    def observe_steps(self, callback: Callable[[int], None]) -> None:
        self._steps.append(callback)

    def model_info(self) -> api.ModelInfo:
        return api.ModelInfo(served_model_name="fake", adapters=(), max_model_len=64, engine=self.name,
                             chat_template=self._tokenizer.chat_template)

    def tokenizer(self):
        return self._tokenizer

    def check(self, request: api.GenerationRequest) -> None:
        if len(request.prompt_token_ids) + request.params.max_tokens > 64:
            raise api.ContextTooLong("too long for 64 tokens")

    async def start(self) -> None:
        self._state = api.LoadState(ready=True, stage="loaded", seconds=0.5)

    async def generate(self, request: api.GenerationRequest) -> AsyncIterator[api.TokenEvent]:
        for step in self._steps:
            step(1)
        for i in range(request.params.max_tokens):
            last = i + 1 == request.params.max_tokens
            yield api.TokenEvent(token_ids=(7,), text="x", finish_reason="length" if last else None,
                                 prompt_tokens=len(request.prompt_token_ids), completion_tokens=i + 1)

    async def cancel(self, request_id: str) -> None:
        return None

    async def health(self) -> bool:
        return self._state.ready

    async def shutdown(self) -> None:
        return None


def test_app_serves_through_the_protocol_alone():
    engine = StrictEngine()
    assert isinstance(engine, api.EngineClient)
    settings = ServerSettings(served_model_name="fake", adapters_dir=None)
    app = create_app(settings, engine)
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "Healthy"}
        reply = client.post("/v1/chat/completions", json={
            "model": "fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] == "xxx"
        metrics = client.get("/metrics").text
    assert 'kaito:model_load_seconds{model_name="fake"} 0.5' in metrics
    assert 'kaito:batch_size_count{model_name="fake"} 1.0' in metrics  # the step observer was wired


def test_not_loaded_reports_the_load_stage():
    engine = StrictEngine()
    app = create_app(ServerSettings(served_model_name="fake", adapters_dir=None), engine)
    engine._state = api.LoadState(stage="weights")
    client = TestClient(app)  # no lifespan: nothing loads
    reply = client.get("/ready")
    assert reply.status_code == 503 and "weights" in reply.json()["error"]["message"]
