"""Per-row sampling and streamed text for a batch whose rows each have their own parameters.

`generate()` applies one sampling configuration to a whole batch; a server batches strangers, so
every row here keeps its own temperature, top-p/top-k, repetition penalty, seed (its own
`torch.Generator`, so a seeded request repeats whatever else shares its batch) and stop strings.
Text is decoded incrementally, holding back bytes that do not form a character yet and any tail
that could still become a stop string, so a streamed client never sees text that is later cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kaito.runtime.inference.engine import SamplingParams


def compute_stop(text: str, stops: tuple[str, ...]) -> tuple[int, bool]:
    """How much of `text` is safe to emit, and whether a stop string ends it there.

    Returns (length, stopped): on a stop, `length` is where the earliest stop string begins;
    otherwise it excludes the longest tail that is a proper prefix of some stop string.
    """
    earliest = -1
    for stop in stops:
        if not stop:
            continue
        at = text.find(stop)
        if at != -1 and (earliest == -1 or at < earliest):
            earliest = at
    if earliest != -1:
        return earliest, True
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
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
    emitted: int = 0  # characters of the decoded text already sent

    def push(self, token_id: int) -> tuple[str, bool]:
        """Add one token; return (new text to send, stopped by a stop string)."""
        self.token_ids.append(token_id)
        text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a multi-byte character is still incomplete
            return "", False
        safe, stopped = compute_stop(text, self.stops)
        delta = text[self.emitted:safe] if safe > self.emitted else ""
        self.emitted = max(self.emitted, safe)
        return delta, stopped

    def flush(self) -> str:
        """At a length or EOS finish: release what was held back for a stop string that never came."""
        text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        delta = text[self.emitted:]
        self.emitted = len(text)
        return delta


def build_generator(params: SamplingParams, device):
    """A private random stream for a seeded request; None shares the global one."""
    if params.seed is None or params.greedy:
        return None
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(params.seed)
    return generator


def compute_next_tokens(logits, rows: list[tuple[SamplingParams, list[int], object, bool]]):
    """Pick one token per row.

    `logits` is [B, V] (float); each row gives (params, token history for the repetition
    penalty, generator or None, suppress_eos_ids) where the last item is a list of token ids to
    forbid (EOS before `min_tokens`). Returns a list of ints.
    """
    import torch

    logits = logits.float()
    chosen: list[int] = []
    for i, (params, history, generator, banned) in enumerate(rows):
        row = logits[i]
        if banned:
            row = row.clone()
            row[list(banned)] = float("-inf")
        if params.repetition_penalty != 1.0 and history:
            ids = torch.tensor(sorted(set(history)), dtype=torch.long, device=row.device)
            picked = row[ids]
            picked = torch.where(picked < 0, picked * params.repetition_penalty,
                                 picked / params.repetition_penalty)
            row = row.clone() if not banned else row
            row[ids] = picked
        if params.greedy:
            chosen.append(int(torch.argmax(row)))
            continue
        row = row / params.temperature
        if params.top_k and params.top_k < row.numel():
            kth = torch.topk(row, params.top_k).values[-1]
            row = row.masked_fill(row < kth, float("-inf"))
        probs = torch.softmax(row, dim=-1)
        if params.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            # keep the smallest prefix whose mass reaches top_p (always at least one token)
            drop = cumulative - sorted_probs >= params.top_p
            sorted_probs = sorted_probs.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
        chosen.append(int(torch.multinomial(probs, 1, generator=generator)))
    return chosen
