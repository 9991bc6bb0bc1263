"""Next-token choice for a batch whose rows each have their own sampling parameters.

`generate()` applies one sampling configuration to a whole batch; a server batches strangers. So
each row keeps its own state (`RowSampler`: penalties, logit bias, grammar, seed), while work that
rows share runs once per group: greedy rows take one `argmax`, rows with the same temperature /
top-k / top-p / min-p go through one list of transformers' logits warpers, and their log-softmax for
`logprobs` is one call. transformers' processors are used where they exist (repetition penalty,
logit bias as `SequenceBiasLogitsProcessor`, temperature, top-k, top-p, min-p); OpenAI's presence
and frequency penalties have none there and are written here (vLLM's rule: output tokens only).

Nothing a request sets can fail the batch: scores are cleaned of NaN/inf before sampling, a row
whose constraints exclude every token falls back to the model's own best token, and a row whose
processing raises is reported alone (`choose_tokens` returns its exception in its place).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kaito.runtime.inference.engine import MIN_TEMPERATURE, SamplingParams, TokenLogprob


@dataclass(kw_only=True)
class RowSampler:
    """One request's sampling state, kept across its steps."""

    params: SamplingParams
    prompt: tuple[int, ...]
    generator: object = None  # torch.Generator for a seeded request
    grammar: object = None  # structured.RowGrammar
    _bias: object = None  # transformers SequenceBiasLogitsProcessor
    _repetition: object = None  # transformers RepetitionPenaltyLogitsProcessor
    _counts: object = None  # output token counts (presence/frequency penalties)
    generated: list[int] = field(default_factory=list)

    @property
    def shapes_scores(self) -> bool:
        p = self.params
        return bool(p.logit_bias or p.repetition_penalty != 1.0 or p.presence_penalty or p.frequency_penalty
                    or self.grammar is not None)

    def process(self, row, banned: tuple[int, ...]) -> None:
        """Apply this row's own processors to its scores `row` ([1, V], in place)."""
        import torch

        p = self.params
        if p.repetition_penalty != 1.0:
            if self._repetition is None:
                from transformers import RepetitionPenaltyLogitsProcessor

                self._repetition = RepetitionPenaltyLogitsProcessor(penalty=p.repetition_penalty)
            history = torch.tensor([list(self.prompt) + self.generated], dtype=torch.long, device=row.device)
            row.copy_(self._repetition(history, row))
        if p.presence_penalty or p.frequency_penalty:
            if self._counts is None:
                self._counts = torch.zeros(row.shape[-1], dtype=row.dtype, device=row.device)
            row[0] -= p.frequency_penalty * self._counts + p.presence_penalty * (self._counts > 0).to(row.dtype)
        if p.logit_bias:
            if self._bias is None:
                from transformers import SequenceBiasLogitsProcessor

                self._bias = SequenceBiasLogitsProcessor(sequence_bias=[[[t], b] for t, b in p.logit_bias])
            row.copy_(self._bias(torch.zeros((1, 1), dtype=torch.long, device=row.device), row))
        if banned:
            row[0, list(banned)] = float("-inf")
        if self.grammar is not None:
            self.grammar.mask(row)

    def record(self, token: int) -> None:
        self.generated.append(token)
        if self._counts is not None and token < self._counts.shape[0]:
            self._counts[token] += 1


def build_generator(params: SamplingParams, device):
    """A private random stream for a seeded request; None shares the global one."""
    if params.seed is None or params.greedy:
        return None
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(params.seed % (1 << 64))  # int64 seeds, negative ones included
    return generator


_WARPERS: dict[tuple, object] = {}


def _warpers(params: SamplingParams):
    """transformers' warpers for a sampling configuration, built once per distinct configuration."""
    key = (max(params.temperature, MIN_TEMPERATURE), params.top_k, params.top_p, params.min_p)
    found = _WARPERS.get(key)
    if found is None:
        from transformers import (
            LogitsProcessorList,
            MinPLogitsWarper,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        found = LogitsProcessorList([TemperatureLogitsWarper(key[0])])
        if params.top_k > 0:
            found.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            found.append(TopPLogitsWarper(params.top_p))
        if params.min_p > 0.0:
            found.append(MinPLogitsWarper(params.min_p))
        if len(_WARPERS) > 256:
            _WARPERS.clear()
        _WARPERS[key] = found
    return found


def _clean(scores, raw) -> None:
    """NaN -> -inf, +inf -> largest float; a row with nothing left takes the raw logits back."""
    import torch

    torch.nan_to_num_(scores, nan=float("-inf"), posinf=torch.finfo(scores.dtype).max)
    dead = torch.isneginf(scores).all(dim=-1)
    if bool(dead.any()):
        scores[dead] = torch.nan_to_num(raw[dead], nan=0.0, posinf=torch.finfo(scores.dtype).max,
                                        neginf=torch.finfo(scores.dtype).min)


def choose_tokens(logits, rows: list[RowSampler], banned: list[tuple[int, ...]]) -> list:
    """One choice per row: `(token, TokenLogprob | None)`, or the exception that row raised."""

    raw = logits.float()
    if all(r.params.greedy and r.params.logprobs is None and not r.shapes_scores for r in rows) and not any(banned):
        return [(token, None) for token in raw.argmax(dim=-1).tolist()]  # the common case, in one call
    scores = raw
    results: list = [None] * len(rows)
    shaped = [i for i, r in enumerate(rows) if r.shapes_scores or banned[i]]
    if shaped:
        scores = raw.clone()
        for i in shaped:
            try:
                rows[i].process(scores[i:i + 1], banned[i])
            except Exception as exc:  # this row alone fails
                results[i] = exc
    live = [i for i in range(len(rows)) if results[i] is None]
    groups: dict[tuple, list[int]] = {}
    for i in live:
        p = rows[i].params
        key = ("greedy",) if p.greedy else (p.temperature, p.top_k, p.top_p, p.min_p)
        groups.setdefault(key, []).append(i)
    tokens: dict[int, int] = {}
    for key, members in groups.items():
        try:
            tokens.update(_choose_group(key, members, rows, scores, raw))
        except Exception:  # one bad row in a group: retry the group's rows one by one
            for i in members:
                try:
                    tokens.update(_choose_group(key, [i], rows, scores, raw))
                except Exception as exc:
                    results[i] = exc
    wanting = [i for i in tokens if rows[i].params.logprobs is not None]
    logprobs = compute_logprobs(raw, wanting, [tokens[i] for i in wanting],
                                [rows[i].params.logprobs or 0 for i in wanting]) if wanting else {}
    for i, token in tokens.items():
        results[i] = (token, logprobs.get(i))
    return results


def _choose_group(key: tuple, members: list[int], rows: list[RowSampler], scores, raw) -> dict[int, int]:
    import torch

    index = torch.tensor(members, device=scores.device)
    group = scores.index_select(0, index)
    if key == ("greedy",):
        _clean(group, raw.index_select(0, index))
        return dict(zip(members, group.argmax(dim=-1).tolist(), strict=True))
    group = _warpers(rows[members[0]].params)(None, group)
    _clean(group, raw.index_select(0, index))
    probs = torch.softmax(group, dim=-1)
    seeded = [j for j, i in enumerate(members) if rows[i].generator is not None]
    chosen = [0] * len(members)
    if len(seeded) < len(members):
        shared = [j for j in range(len(members)) if rows[members[j]].generator is None]
        picks = torch.multinomial(probs[shared], 1).flatten().tolist()
        for j, token in zip(shared, picks, strict=True):
            chosen[j] = token
    for j in seeded:
        chosen[j] = int(torch.multinomial(probs[j], 1, generator=rows[members[j]].generator))
    return dict(zip(members, chosen, strict=True))


def compute_logprobs(raw, rows: list[int], tokens: list[int], tops: list[int]) -> dict[int, TokenLogprob]:
    """Log-probabilities of `tokens` under the model's own distribution (`raw` logits), with top-k."""
    import torch

    index = torch.tensor(rows, device=raw.device)
    logp = torch.log_softmax(raw.index_select(0, index), dim=-1)
    chosen = logp.gather(1, torch.tensor(tokens, device=raw.device).unsqueeze(1)).flatten().tolist()
    width = max(tops)
    best = logp.topk(min(width, logp.shape[-1]), dim=-1) if width else None
    out: dict[int, TokenLogprob] = {}
    for j, i in enumerate(rows):
        top = ()
        if best is not None and tops[j]:
            top = tuple(zip(best.indices[j, :tops[j]].tolist(), best.values[j, :tops[j]].tolist(), strict=True))
        out[i] = TokenLogprob(token_id=tokens[j], logprob=chosen[j], top=top)
    return out


def compute_prompt_logprobs(logits, prompt: list[int], top: int) -> tuple[TokenLogprob | None, ...]:
    """Per prompt token, its log-probability given the tokens before it (`logits` [L, V]; first: None)."""
    import torch

    if len(prompt) < 2:
        return (None,) * len(prompt)
    logp = torch.log_softmax(logits[:-1].float(), dim=-1)
    targets = torch.tensor(prompt[1:], device=logp.device)
    chosen = logp.gather(1, targets.unsqueeze(1)).flatten().tolist()
    best = logp.topk(min(top, logp.shape[-1]), dim=-1) if top else None
    out: list[TokenLogprob | None] = [None]
    for j, token in enumerate(prompt[1:]):
        alternatives = ()
        if best is not None:
            alternatives = tuple(zip(best.indices[j].tolist(), best.values[j].tolist(), strict=True))
        out.append(TokenLogprob(token_id=token, logprob=chosen[j], top=alternatives))
    return tuple(out)
