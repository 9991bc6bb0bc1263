"""Structured output (`response_format` json_object / json_schema) through llguidance.

llguidance (the guidance project's Rust grammar engine, one of vLLM's structured-output backends)
turns a JSON schema into a token mask per step: `fill_next_token_bitmask` says which tokens keep the
output valid, `consume_token` advances the parser. It is a single small wheel with no further
dependencies and runs on CPU, which is why it was chosen over xgrammar (pulls triton and a TVM FFI
package), outlines (a large dependency tree) and lm-format-enforcer (pure Python, per-character).
Grammars are compiled at the door (`check`), so a bad schema is a 400, never a failed step.
"""

from __future__ import annotations

import json
import threading

from kaito.runtime.inference.engine import InvalidRequest


def build_grammar(schema_text: str) -> str:
    """The llguidance grammar for a JSON schema; `InvalidRequest` naming the problem if it is unusable."""
    import llguidance

    try:
        schema = json.loads(schema_text)
    except ValueError as exc:
        raise InvalidRequest(f"response_format: the JSON schema is not JSON: {exc}") from None
    if not isinstance(schema, dict | bool):
        raise InvalidRequest("response_format: the JSON schema must be an object")
    grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
    ok, error = _validate(grammar)
    if not ok:
        raise InvalidRequest(f"response_format: this JSON schema cannot be enforced: {error}")
    return grammar


def _validate(grammar: str) -> tuple[bool, str]:
    import llguidance

    try:
        error = llguidance.LLMatcher.validate_grammar(grammar)
    except Exception as exc:  # llguidance raises ValueError or RuntimeError for bad schemas
        return False, str(exc)
    return (not error), str(error or "")


class GrammarTokenizer:
    """llguidance's view of the model's tokenizer, built once (lazily) per engine."""

    def __init__(self, tokenizer, vocab_size: int, eos_ids: tuple[int, ...]) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._eos = list(eos_ids)
        self._built = None
        self._lock = threading.Lock()

    def get(self):
        with self._lock:
            if self._built is None:
                import llguidance.hf

                self._built = llguidance.hf.from_tokenizer(self._tokenizer, n_vocab=self._vocab_size,
                                                           eos_token=self._eos or None)
            return self._built


class RowGrammar:
    """One request's parser state: masks each step's scores, advances on the chosen token."""

    def __init__(self, tokenizer: GrammarTokenizer, grammar: str) -> None:
        import llguidance
        import llguidance.torch as lt

        built = tokenizer.get()
        self._matcher = llguidance.LLMatcher(built, grammar)
        self._bitmask = lt.allocate_token_bitmask(1, built.vocab_size)

    def mask(self, row_scores) -> None:
        """Set every token the grammar forbids now to -inf in `row_scores` ([1, V], in place)."""
        import llguidance.torch as lt

        lt.fill_next_token_bitmask(self._matcher, self._bitmask, 0)
        lt.apply_token_bitmask_inplace(row_scores, self._bitmask)

    def accept(self, token_id: int) -> bool:
        """Advance on the chosen token; True when the grammar is complete (the output must end)."""
        self._matcher.consume_token(token_id)
        return self._matcher.is_stopped()
