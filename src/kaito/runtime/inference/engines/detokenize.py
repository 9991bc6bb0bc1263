"""Streamed text for one request: token ids in, text deltas out, stop strings honoured.

Decoding is incremental, so a long answer costs O(1) per token rather than O(n): with a fast
(Rust) tokenizer, through the tokenizers library's own `DecodeStream` (one call per token, which
holds back bytes that do not form a character yet; vLLM decodes the same way); otherwise each new
token decodes a short window (from a few tokens back, so tokenizers that fold spaces into the next
token still render correctly). At the end, whatever a full decode adds (an incomplete character as
U+FFFD) is released too. Any tail that could still become a stop string is held back, so a
streamed client never sees text that is later cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def compute_stop(text: str, stops: tuple[str, ...], start: int = 0) -> tuple[int, bool]:
    """How much of `text` is safe to emit, and whether a stop string ends it there.

    Returns (length, stopped): on a stop, `length` is where the earliest stop string begins;
    otherwise it excludes the longest tail that is a proper prefix of some stop string. Stops are
    looked for from `start` on (text before it was already cleared).
    """
    earliest = -1
    for stop in stops:
        if not stop:
            continue
        at = text.find(stop, start)
        if at != -1 and (earliest == -1 or at < earliest):
            earliest = at
    if earliest != -1:
        return earliest, True
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text) - start), 0, -1):
            if text.endswith(stop[:size]):
                hold = max(hold, size)
                break
    return len(text) - hold, False


@dataclass(kw_only=True)
class TextStream:
    """Turns a growing list of token ids into text deltas, honouring stop strings."""

    tokenizer: object
    stops: tuple[str, ...] = ()
    token_ids: list[int] = field(default_factory=list)
    text: str = ""  # the decoded text so far (complete characters only)
    emitted: int = 0  # characters of `text` already sent
    _window: int = 0  # token index where the decode window starts
    _read: int = 0  # tokens whose text is in `text`
    _stream: object = None  # tokenizers' DecodeStream, when the tokenizer has a Rust backend
    _backend: object = None

    def __post_init__(self) -> None:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        # a tokenizer that cleans up spaces after decoding (an option of transformers' decode) keeps windows
        if backend is not None and not getattr(self.tokenizer, "clean_up_tokenization_spaces", False):
            from tokenizers.decoders import DecodeStream

            self._stream, self._backend = DecodeStream(skip_special_tokens=True), backend

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _advance(self, final: bool) -> None:
        if self._stream is not None:
            if not final:
                self.text += self._stream.step(self._backend, self.token_ids[-1]) or ""
            else:  # bytes still held for a character that never completed: what a full decode shows
                full = self._decode(self.token_ids)
                if len(full) > len(self.text) and full.startswith(self.text):
                    self.text = full
            return
        before = self._decode(self.token_ids[self._window:self._read])
        after = self._decode(self.token_ids[self._window:])
        if len(after) > len(before) and (final or not after.endswith("\ufffd")):
            self.text += after[len(before):]
            self._window, self._read = self._read, len(self.token_ids)

    def push(self, token_id: int) -> tuple[str, bool]:
        """Add one token; return (new text to send, stopped by a stop string)."""
        self.token_ids.append(token_id)
        self._advance(final=False)
        safe, stopped = compute_stop(self.text, self.stops, self.emitted)
        delta = self.text[self.emitted:safe] if safe > self.emitted else ""
        self.emitted = max(self.emitted, safe)
        return delta, stopped

    def flush(self) -> str:
        """At a length or EOS finish: release what was held back for a stop string that never came."""
        self._advance(final=True)
        delta = self.text[self.emitted:]
        self.emitted = len(self.text)
        return delta
