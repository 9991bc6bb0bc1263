"""The vLLM engine behind our `EngineClient`, for the routes we add to vLLM's own server (KAITO's /chat).

It lives beside `vllm_server`, not in `engines/`: the engine table hands a vLLM process to
`vllm_server` as a whole, and this adapter exists only inside that server.

vLLM's OpenAI server owns the engine (`vllm.engine.protocol.EngineClient`, built and shut down by
`vllm_server`); this class only adapts it to our protocol so KAITO's routes run on the same engine,
batch and `vllm:` metrics as vLLM's routes. The sampling mapping (`build_sampling_kwargs`) is pure,
so it is tested without vLLM. vLLM cannot mix LoRA adapters by strength (KAITO v0.12 refuses
strengths too): the default model is the base model and each adapter is addressed by its name.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from kaito.runtime.inference import engine as api

log = logging.getLogger("kaito.runtime.inference")


def build_sampling_kwargs(params: api.SamplingParams) -> dict[str, object]:
    """`vllm.SamplingParams` keyword arguments for one request."""
    return {
        "n": 1, "max_tokens": params.max_tokens, "temperature": max(params.temperature, 0.0),
        "top_p": params.top_p, "top_k": params.top_k if params.top_k > 0 else -1,
        "repetition_penalty": params.repetition_penalty, "seed": params.seed, "stop": list(params.stop),
        "ignore_eos": params.ignore_eos, "min_tokens": params.min_tokens, "min_p": params.min_p,
        "presence_penalty": params.presence_penalty, "frequency_penalty": params.frequency_penalty,
        "logit_bias": dict(params.logit_bias) or None, "logprobs": params.logprobs,
        "prompt_logprobs": params.prompt_logprobs,
    }


def compute_finish_reason(reason: str | None) -> api.FinishReason | None:
    if reason is None:
        return None
    return reason if reason in ("stop", "length") else "abort"  # type: ignore[return-value]


class VllmEngine:
    """`EngineClient` over a running vLLM engine client (`AsyncLLM`)."""

    def __init__(self, client, *, served_model_name: str, adapters: Mapping[str, Path] | None = None,
                 stats: Callable[[], api.EngineStats] | None = None) -> None:
        self._client = client
        self._served = served_model_name
        self._adapters = dict(adapters or {})
        self._lora: dict[str, object] = {}
        self._stats = stats or api.EngineStats  # the server reads vLLM's own gauges (see vllm_kaito)

    @property
    def name(self) -> api.EngineName:
        return api.EngineName.VLLM

    def load_state(self) -> api.LoadState:
        """Loaded by vLLM's server before our routes exist; failed once vLLM's engine has died."""
        if self._client.errored:
            return api.LoadState(ready=False, stage="stopped", error=f"the vLLM engine stopped: "
                                                                     f"{self._client.dead_error}")
        return api.LoadState(ready=True, stage="loaded")

    def stats(self) -> api.EngineStats:
        return self._stats()

    def observe_steps(self, callback: Callable[[int], None]) -> None:
        """vLLM schedules its own steps and does not report them to us: nothing to observe."""

    async def start(self) -> None:
        """Nothing to load: vLLM's server built the engine before our routes were added."""
        from vllm.lora.request import LoRARequest

        self._lora = {name: LoRARequest(name, i + 1, str(path)) for i, (name, path) in
                      enumerate(sorted(self._adapters.items()))}

    def model_info(self) -> api.ModelInfo:
        tokenizer = self.tokenizer()
        return api.ModelInfo(served_model_name=self._served, adapters=tuple(sorted(self._adapters)),
                             max_model_len=int(self._client.model_config.max_model_len), engine=self.name,
                             chat_template=getattr(tokenizer, "chat_template", None))

    def tokenizer(self):
        return self._client.get_tokenizer()

    def check(self, request: api.GenerationRequest) -> None:
        state = self.load_state()
        if not state.ready:
            raise api.EngineNotReady(state.reason)
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
            yield api.TokenEvent(token_ids=tuple(completion.token_ids), text=completion.text,
                                 finish_reason=compute_finish_reason(completion.finish_reason),
                                 prompt_tokens=len(request.prompt_token_ids), completion_tokens=produced)

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
