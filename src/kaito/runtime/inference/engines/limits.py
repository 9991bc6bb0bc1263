"""What a request may ask of a loaded model, checked before the route commits to an answer.

The transformers engine checks a request where it runs; when the engine runs in its own process,
the HTTP process checks it too, from the same facts (`ModelFacts`, sent once the model is loaded),
so a too-long prompt, an unknown adapter or an unusable JSON schema is a 4xx before any byte, with
no round trip to the engine process.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaito.runtime.inference import engine as api
from kaito.runtime.inference.engines import structured


@dataclass(frozen=True, kw_only=True)
class ModelFacts:
    """What the loaded model allows, as the engine found it."""

    adapters: tuple[str, ...]
    max_model_len: int
    vocab: int  # rows of the output embedding: valid token ids are 0..vocab-1
    eos: tuple[int, ...]


class GrammarCache:
    """Compiled llguidance grammars by JSON schema text (a bad schema raises `InvalidRequest`)."""

    def __init__(self, capacity: int = 64) -> None:
        self._capacity = capacity
        self._grammars: dict[str, str] = {}

    def get(self, schema: str) -> str:
        found = self._grammars.get(schema)
        if found is None:
            found = structured.build_grammar(schema)
            if len(self._grammars) >= self._capacity:
                self._grammars.clear()
            self._grammars[schema] = found
        return found


def check_request(request: api.GenerationRequest, facts: ModelFacts, grammars: GrammarCache) -> None:
    """Raise the `EngineError` this request would meet in the engine, or return."""
    params = request.params
    if request.adapter is not None and request.adapter not in facts.adapters:
        raise api.UnknownModel(f"the model `{request.adapter}` does not exist")
    total = len(request.prompt_token_ids) + params.max_tokens
    if total > facts.max_model_len:
        raise api.ContextTooLong(
            f"This model's maximum context length is {facts.max_model_len} tokens; the request "
            f"needs {total} ({len(request.prompt_token_ids)} in the prompt, {params.max_tokens} to generate)")
    if not request.prompt_token_ids:
        raise api.InvalidRequest("the prompt is empty")
    if not all(0 <= t < facts.vocab for t in request.prompt_token_ids):
        raise api.InvalidRequest(f"the prompt holds token ids outside the vocabulary (0..{facts.vocab - 1})")
    if not all(0 <= t < facts.vocab for t, _ in params.logit_bias):
        raise api.InvalidRequest(f"logit_bias: token ids must be in the vocabulary (0..{facts.vocab - 1})")
    if params.json_schema is not None:
        grammars.get(params.json_schema)
