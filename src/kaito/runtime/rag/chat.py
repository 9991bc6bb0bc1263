"""`/v1/chat/completions` with `index_name`: retrieve, fit the context into the window, ask the LLM.

KAITO's rules (§4.5), in order: no LLM configured → 503; `tools`/`functions` or `n > 1` → 400;
unknown index → 404; `context_token_ratio` outside 0.2–0.8 → 400. Passed through unchanged to the
LLM: requests without `index_name`, with a role other than user/system/assistant/developer, or with
non-text user content; `stream: true` only there (with an index → 400). Otherwise the user messages
after the last assistant message are the query, the rest is history; an estimated prompt longer
than the window → 400; `max_tokens` is clamped to what the window leaves.

Context selection: `top_k = max(100, free window / 500)` chunks (at most `RAG_MAX_TOP_K`) in fused
order; a chunk qualifies when BM25 found it or its cosine similarity reaches
`RAG_SIMILARITY_THRESHOLD` (KAITO applied its 0.85 cut-off to L2 distances, keeping the *far*
ones); qualifying chunks are taken while their estimated tokens fit into
`(window − prompt − max_tokens − 150) × context_token_ratio`: what the window leaves once the
prompt and the answer have their room. (KAITO's budget is `min(max_tokens or window, window −
prompt − 150) × ratio`, which ties the context to the answer's length: `max_tokens: 8` leaves
4 tokens of context, while no `max_tokens` lets context crowd out the answer.) With no chunk selected the
request passes through, as KAITO does when its engine answers "Empty Response".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from kaito.runtime.rag.errors import NotConfigured, RagError
from kaito.runtime.rag.llm import LLMClient, estimate_tokens
from kaito.runtime.rag.protocol import ChatRequest
from kaito.runtime.rag.retrieval import Fused
from kaito.runtime.rag.service import RagService

RAG_ROLES = ("user", "system", "assistant", "developer")
NODE_TOKEN_APPROXIMATION = 500
RESERVED_TOKENS = 150
# request keys that travel to the LLM on the RAG path (sampling and output controls)
FORWARDED = ("temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias",
             "user", "response_format", "logprobs", "top_logprobs")
CONTEXT_PROMPT = ("Answer using the context below when it is relevant. Each passage comes from the "
                  "user's indexed documents.\n---------------------\n{context}\n---------------------")


def _text_of(content: Any) -> str | None:
    """Text of a message's content, or None when it holds anything but text (image, audio…)."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, dict):
        return content.get("text", "") if content.get("type") == "text" else None
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            else:
                return None
        return "\n".join(parts)
    return None


def _qualifies(node: Fused, threshold: float) -> bool:
    return node.source != "dense_only" or (node.dense_score is not None and node.dense_score >= threshold)


def select_context(nodes: list[Fused], budget: int, threshold: float) -> list[Fused]:
    chosen, used = [], 0
    for node in nodes:
        if not _qualifies(node, threshold):
            continue
        cost = estimate_tokens(node.text)
        if used + cost <= budget:
            chosen.append(node)
            used += cost
    return chosen


def parse(body: dict[str, Any]) -> ChatRequest:
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise RagError(f"Invalid request format: {problems}") from None


async def chat_completion(service: RagService, llm: LLMClient | None, body: dict[str, Any], *,
                          fill_ratio: float, threshold: float, max_top_k: int
                          ) -> dict[str, Any] | AsyncIterator[bytes]:
    """The JSON answer, or a byte stream to relay (streamed passthrough)."""
    if llm is None:
        raise NotConfigured("InferenceService not configured. This RAGEngine instance only supports document "
                            "retrieval via /retrieve. To chat, set the RAGEngine's inferenceService.url.")
    if body.get("tools") or body.get("functions"):
        raise RagError("tools and functions are not supported.")
    request = parse(body)
    if (request.n or 1) > 1:
        raise RagError("n > 1 is not supported.")
    if request.index_name:
        service.store(request.index_name)  # 404 for an unknown index
    ratio = request.context_token_ratio
    if ratio is not None and not 0.2 <= ratio <= 0.8:
        raise RagError(f"Invalid context_token_ratio: {ratio}. Must be between 0.2 and 0.8.")
    if not body.get("model"):
        model = await llm.model_name(None)
        body = {**body, "model": model} if model else body
    if not request.index_name:
        return await llm.open_stream(body) if request.stream else await llm.passthrough(body)
    if request.stream:
        raise RagError("stream=true is only supported for passthrough chat completions.")

    texts: list[str] = []
    for i, message in enumerate(request.messages):
        if message.role not in RAG_ROLES:
            return await llm.passthrough(body)
        text = _text_of(message.content)
        if text is None:
            return await llm.passthrough(body)
        if message.role == "user" and not text:
            raise RagError(f"messages[{i}].content: user messages must have content")
        texts.append(text)
    query_start = len(request.messages)
    while query_start > 0 and request.messages[query_start - 1].role == "user":
        query_start -= 1
    query = "\n\n".join(texts[query_start:])
    if not query:
        raise RagError("There must be a user prompt since the latest assistant message.")

    window = llm.context_window
    prompt_tokens = sum(estimate_tokens(t) for t in texts)
    if prompt_tokens > window:
        raise RagError(f"Prompt length (about {prompt_tokens} tokens) exceeds the context window ({window}).")
    max_tokens = request.max_tokens or request.max_completion_tokens
    if max_tokens and max_tokens > window - prompt_tokens:
        max_tokens = window - prompt_tokens
    top_k = min(max_top_k, max(100, (window - prompt_tokens) // NODE_TOKEN_APPROXIMATION))
    found, _ = await service.retrieve(request.index_name, query, top_k, None)
    budget = int((window - prompt_tokens - (max_tokens or 0) - RESERVED_TOKENS)
                 * (ratio if ratio is not None else fill_ratio))
    chosen = select_context(found, budget, threshold)
    if not chosen:
        return await llm.passthrough(body)

    context = "\n\n".join(node.text for node in chosen)
    messages = [{"role": "system", "content": CONTEXT_PROMPT.format(context=context)}]
    messages += [{"role": m.role, "content": t} for m, t in zip(request.messages[:query_start], texts, strict=False)]
    messages.append({"role": "user", "content": query})
    used = prompt_tokens + estimate_tokens(messages[0]["content"])
    room = max(1, window - used)
    params: dict[str, Any] = {k: body[k] for k in FORWARDED if k in body}
    params["max_tokens"] = min(max_tokens, room) if max_tokens else room
    model = body.get("model")
    if model:
        params["model"] = model
    answer = await llm.complete(messages, params)
    choice = (answer.get("choices") or [{}])[0]
    content = (choice.get("message") or {}).get("content") or ""
    usage = answer.get("usage") or {"prompt_tokens": used, "completion_tokens": estimate_tokens(content),
                                    "total_tokens": used + estimate_tokens(content)}
    return {
        "id": uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
        "model": request.model or model or "",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": choice.get("finish_reason") or "stop", "logprobs": None}],
        "usage": usage,
        "source_nodes": [{"doc_id": n.doc_id, "node_id": n.node_id, "text": n.text, "score": n.score,
                          "dense_score": n.dense_score, "sparse_score": n.sparse_score, "source": n.source,
                          "metadata": n.metadata or None} for n in chosen],
    }
