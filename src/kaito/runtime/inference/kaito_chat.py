"""KAITO's `/chat`, answered one way by both model servers (ours, and ours beside vLLM's).

The request model and the sampling rules are `protocol_kaito`'s; this module turns a parsed request
into one generation on the engine behind `service` and KAITO's `{"Result": ...}` answer, so the two
apps (`app` for the transformers engine, `vllm_kaito` beside vLLM's own server) cannot drift apart.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from kaito.runtime.inference import engine as api
from kaito.runtime.inference import protocol_kaito as kaito_proto
from kaito.runtime.inference.service import ClientGone, InferenceService


async def wait_for_disconnect(request: Request) -> None:
    """Return when the client hangs up (the body is already read, so the next message says so)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def answer_kaito_chat(service: InferenceService, engine: api.EngineClient,
                            body: kaito_proto.KaitoChatRequest, pipeline: str, request: Request):
    """KAITO's answer to `body`; 499 when the client went away first. `api.InvalidRequest` when the
    request lacks what `pipeline` needs (a prompt, or messages)."""
    if pipeline == "text-generation":
        if not body.prompt:
            raise api.InvalidRequest(kaito_proto.MISSING_PROMPT)
        prompt = (body.prefix or "") + body.prompt
        ids = service.tokenize(prompt)
    else:
        if not body.messages:
            raise api.InvalidRequest(kaito_proto.MISSING_MESSAGES)
        prompt = service.build_chat_prompt([m.model_dump() for m in body.messages])
        ids = service.tokenize(prompt, add_special_tokens=False)
    params = kaito_proto.build_kaito_sampling(body.generate_kwargs, len(ids))
    if body.handle_long_generation == "hole":  # KAITO/transformers: drop the prompt's start to fit
        keep = engine.model_info().max_model_len - params.max_tokens
        ids = ids[-keep:] if keep > 0 else ids
    gen = api.GenerationRequest(request_id=service.new_request_id("chat"), prompt_token_ids=ids, params=params)
    run = service.start([gen])
    try:
        [result] = await service.collect(run, lambda: wait_for_disconnect(request))
    except ClientGone:
        return Response(status_code=499)
    return kaito_proto.build_kaito_result(pipeline, prompt, result.text, body.return_full_text)
