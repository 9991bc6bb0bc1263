"""The vLLM engine: drives vLLM's async engine on a GPU behind the same `EngineClient`.

vLLM brings paged attention and its own continuous batching; we keep our routes, protocols and
metrics and hand it token ids. The settings map to vLLM's engine arguments in pure functions
(`build_engine_args`, `build_sampling_kwargs`) so the mapping is tested without vLLM. vLLM cannot
mix LoRA adapters by strength (KAITO v0.12 says the same), so with this engine the default model
is the base model, unless there is exactly one adapter at strength 1, which then is the default.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

from kaito.runtime.inference import adapters as adapters_mod
from kaito.runtime.inference import engine as api
from kaito.runtime.inference.settings import ServerSettings, compute_adapter_strength

log = logging.getLogger("kaito.runtime.inference")


class VllmUnavailable(RuntimeError):
    pass


def build_engine_args(settings: ServerSettings, adapters: list[adapters_mod.AdapterSpec]) -> dict[str, object]:
    """`AsyncEngineArgs` keyword arguments for these settings."""
    if settings.load_in_8bit:
        raise api.EngineError("--load-in-8bit is not supported by the vllm engine; use --engine transformers")
    args: dict[str, object] = {
        "model": settings.model,
        "revision": settings.revision,
        "dtype": settings.dtype,
        "trust_remote_code": settings.trust_remote_code,
        "max_num_seqs": settings.max_running,
    }
    if settings.served_model_name:
        args["served_model_name"] = settings.served_model_name
    if settings.max_model_len is not None:
        args["max_model_len"] = settings.max_model_len
    if settings.load_in_4bit:
        args["quantization"] = "bitsandbytes"
    if adapters:
        args["enable_lora"] = True
        args["max_loras"] = len(adapters)
        args["max_lora_rank"] = max(16, *(_lora_rank(a) for a in adapters))
    return args


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


def compute_default_adapter(adapters: list[adapters_mod.AdapterSpec]) -> str | None:
    if len(adapters) == 1 and adapters[0].strength == 1.0:
        return adapters[0].name
    if adapters:
        log.warning("the vllm engine cannot mix adapters by strength: the default model is the base model; "
                    "address adapters by name")
    return None


def _lora_rank(spec: adapters_mod.AdapterSpec) -> int:
    import json

    config = json.loads((spec.path / "adapter_config.json").read_text())
    return int(config.get("r", 8))


def _import_vllm():
    try:
        import vllm
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.lora.request import LoRARequest
    except ImportError as exc:
        raise VllmUnavailable("--engine vllm needs vLLM and a GPU: pip install 'kaito[vllm]' "
                              f"(import failed: {exc})") from None
    engine_cls = getattr(vllm, "AsyncLLMEngine", None)
    return vllm, AsyncEngineArgs, LoRARequest, engine_cls


class VllmEngine:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._load = api.ModelLoad()
        self._engine = None
        self._tokenizer = None
        self._adapters: list[adapters_mod.AdapterSpec] = []
        self._default_adapter: str | None = None
        self._max_len = 0
        self._lora = None

    @property
    def name(self) -> api.EngineName:
        return api.EngineName.VLLM

    def load_state(self) -> api.LoadState:
        return self._load.state

    def stats(self) -> api.EngineStats:
        return api.EngineStats()  # vLLM exports its own running/waiting gauges; ours stay at 0

    def observe_steps(self, callback) -> None:
        """vLLM schedules its own steps and does not report them to us: the batch histogram stays empty."""

    async def start(self) -> None:
        engine = await self._load.run(self._start)
        self._engine = engine

    async def _start(self):
        vllm, engine_args_cls, lora_cls, engine_cls = _import_vllm()
        from transformers import AutoTokenizer

        self._adapters = adapters_mod.build_adapter_specs(
            adapters_mod.discover_adapters(self.settings.adapters_dir),
            lambda name: compute_adapter_strength(self.settings, name, os.environ))
        self._default_adapter = compute_default_adapter(self._adapters)
        args = engine_args_cls(**build_engine_args(self.settings, self._adapters))
        self._load.stage(f"vLLM engine for {self.settings.model}")
        engine = await asyncio.to_thread(engine_cls.from_engine_args, args)
        self._load.stage("tokenizer")
        self._tokenizer = await asyncio.to_thread(
            AutoTokenizer.from_pretrained, self.settings.model, revision=self.settings.revision,
            trust_remote_code=self.settings.trust_remote_code)
        self._lora = {spec.name: lora_cls(spec.name, i + 1, str(spec.path))
                      for i, spec in enumerate(self._adapters)}
        model_config = await engine.get_model_config()
        self._max_len = int(model_config.max_model_len)
        return engine

    def _require(self):
        if self._engine is None:
            raise api.EngineNotReady(self._load.state.reason)
        return self._engine

    def model_info(self) -> api.ModelInfo:
        self._require()
        return api.ModelInfo(served_model_name=self.settings.model_name,
                             adapters=tuple(a.name for a in self._adapters), max_model_len=self._max_len,
                             engine=self.name, chat_template=getattr(self._tokenizer, "chat_template", None))

    def tokenizer(self):
        self._require()
        return self._tokenizer

    def check(self, request: api.GenerationRequest) -> None:
        self._require()
        if request.adapter is not None and request.adapter not in self._lora:
            raise api.UnknownModel(f"the model `{request.adapter}` does not exist")
        total = len(request.prompt_token_ids) + request.params.max_tokens
        if total > self._max_len:
            raise api.ContextTooLong(f"This model's maximum context length is {self._max_len} tokens; "
                                     f"the request needs {total}")

    async def generate(self, request: api.GenerationRequest) -> AsyncIterator[api.TokenEvent]:
        self.check(request)
        import vllm

        adapter = request.adapter or self._default_adapter
        stream = self._engine.generate(
            {"prompt_token_ids": list(request.prompt_token_ids)},
            vllm.SamplingParams(**build_sampling_kwargs(request.params)), request.request_id,
            lora_request=self._lora.get(adapter) if adapter else None)
        sent_tokens, sent_text = 0, 0
        async for output in stream:
            completion = output.outputs[0]
            tokens = tuple(completion.token_ids[sent_tokens:])
            text = completion.text[sent_text:]
            sent_tokens, sent_text = len(completion.token_ids), len(completion.text)
            finish = completion.finish_reason if completion.finish_reason in ("stop", "length") else (
                "abort" if completion.finish_reason else None)
            yield api.TokenEvent(token_ids=tokens, text=text, finish_reason=finish,
                                 prompt_tokens=len(request.prompt_token_ids), completion_tokens=sent_tokens)

    async def cancel(self, request_id: str) -> None:
        if self._engine is not None:
            await self._engine.abort(request_id)

    async def health(self) -> bool:
        if self._engine is None:
            return False
        try:
            await self._engine.check_health()
        except Exception:
            return False
        return True

    async def shutdown(self) -> None:
        if self._engine is not None and hasattr(self._engine, "shutdown"):
            self._engine.shutdown()
