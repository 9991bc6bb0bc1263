"""The vLLM engine behind our `EngineClient`, for the routes we add to vLLM's own server (KAITO's /chat).

vLLM's OpenAI server owns the engine (`vllm.engine.protocol.EngineClient`, built and shut down by
`vllm_server`); this class only adapts it to our protocol so KAITO's routes run on the same engine,
batch and metrics as vLLM's routes. The sampling mapping (`build_sampling_kwargs`) is pure, so it is
tested without vLLM. vLLM cannot mix LoRA adapters by strength (KAITO v0.12 refuses strengths too):
the default model is the base model and each adapter is addressed by its name.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from kaito.runtime.inference import engine as api

log = logging.getLogger("kaito.runtime.inference")


def build_sampling_kwargs(params: api.SamplingParams) -> dict[str, object]:
    """`vllm.SamplingParams` keyword arguments for one request."""
    return {
        "n": 1, "max_tokens": params.max_tokens, "temperature": max(params.temperature, 0.0),
        "top_p": params.top_p, "top_k": params.top_k if params.top_k > 0 else -1,
        "repetition_penalty": params.repetition_penalty, "seed": params.seed, "stop": list(params.stop),
        "ignore_eos": params.ignore_eos, "min_tokens": params.min_tokens,
    }


def compute_finish_reason(reason: str | None) -> api.FinishReason | None:
    if reason is None:
        return None
    return reason if reason in ("stop", "length") else "abort"  # type: ignore[return-value]


class VllmEngine:
    """`EngineClient` over a running vLLM engine client (`AsyncLLM`)."""

    name = "vllm"

    def __init__(self, client, *, served_model_name: str, adapters: Mapping[str, Path] | None = None) -> None:
        self._client = client
        self._served = served_model_name
        self._adapters = dict(adapters or {})
        self._lora: dict[str, object] = {}
        self.load_seconds: float | None = None  # vLLM logs and exports its own load time
        self.load_error: str | None = None

    @property
    def ready(self) -> bool:
        return not self._client.errored

    async def start(self) -> None:
        """Nothing to load: vLLM's server built the engine before our routes were added."""
        from vllm.lora.request import LoRARequest

        self._lora = {name: LoRARequest(name, i + 1, str(path)) for i, (name, path) in
                      enumerate(sorted(self._adapters.items()))}

    def model_info(self) -> api.ModelInfo:
        tokenizer = self.tokenizer()
        return api.ModelInfo(self._served, tuple(sorted(self._adapters)),
                             int(self._client.model_config.max_model_len), self.name,
                             getattr(tokenizer, "chat_template", None))

    def tokenizer(self):
        return self._client.get_tokenizer()

    def check(self, request: api.GenerationRequest) -> None:
        if self._client.errored:
            raise api.EngineNotReady(f"the vLLM engine stopped: {self._client.dead_error}")
        if request.adapter is not None and request.adapter not in self._adapters:
            raise api.UnknownModel(f"The model `{request.adapter}` does not exist")
        limit = int(self._client.model_config.max_model_len)
        total = len(request.prompt_token_ids) + request.params.max_tokens
        if total > limit:
            raise api.ContextTooLong(f"This model's maximum context length is {limit} tokens; "
                                     f"the request needs {total}")

    async def generate(self, request: api.GenerationRequest) -> AsyncIterator[api.TokenEvent]:
        self.check(request)
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(**build_sampling_kwargs(request.params), output_kind=RequestOutputKind.DELTA)
        stream = self._client.generate({"prompt_token_ids": list(request.prompt_token_ids)}, params,
                                       request.request_id, lora_request=self._lora.get(request.adapter or ""))
        produced = 0
        async for output in stream:
            completion = output.outputs[0]
            produced += len(completion.token_ids)
            yield api.TokenEvent(tuple(completion.token_ids), completion.text,
                                 compute_finish_reason(completion.finish_reason),
                                 len(request.prompt_token_ids), produced)

    async def cancel(self, request_id: str) -> None:
        await self._client.abort(request_id)

    async def health(self) -> bool:
        try:
            await self._client.check_health()
        except Exception:
            return False
        return True

    async def shutdown(self) -> None:
        """vLLM's server stops the engine; nothing of ours to release."""
