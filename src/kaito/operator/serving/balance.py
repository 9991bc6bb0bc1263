"""Which replica gets a request: least outstanding requests, prefix affinity under a load cap.

Pure functions over a snapshot of loads, plus the ejection book (with an injected clock), so the
rules are tested with tables and the gateway only keeps the counts.

The rule (what a cache-aware gateway such as the Inference Extension's endpoint picker approximates
with KV-cache scoring, in the small):

1. **Prefix key.** For a JSON body: the `model`, then the prompt text — the chat `messages` as
   `role: text` lines (text parts of a list content; an image part by its URL), or `prompt` for
   completions and KAITO's `/chat` — cut to its first `prefix_chars` characters (default 256, about
   64 tokens: the shared system prompt and the start of a conversation, what a prefix cache reuses).
   No key (not JSON, no prompt): rule 3 only.
2. **Affinity with bounded load.** Replicas are ranked for the key by rendezvous hashing (BLAKE2b of
   key and replica name; a replica that comes or goes moves only its own keys). The first in that
   order whose outstanding requests, with this one, stay within the cap
   `ceil(load_factor × (all outstanding + 1) / replicas)` takes it (consistent hashing with bounded
   loads; `load_factor` 1.25). So a hot prefix fills its replica up to 25% above the mean and spills
   to the next one in its own order, which then warms the same prefix.
3. **Least outstanding.** Otherwise the replica with the fewest outstanding requests; ties go round
   robin (`turn`).

Ejection: a replica that failed (connection refused, timeout, 5xx) is left out for `base_s`, doubled
on each further failure after it came back (capped at `max_s`); one success clears it. Failures of
requests already in flight while it is out do not lengthen the ejection. When every candidate is
ejected, all of them are used anyway (Envoy's panic mode): better a retry than a certain 503.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_PREFIX_CHARS = 256
DEFAULT_LOAD_FACTOR = 1.25


def prefix_key(body: bytes, prefix_chars: int = DEFAULT_PREFIX_CHARS) -> str | None:
    """The affinity key of a request body (rule 1), or None when it has no prompt to key on."""
    if not body or prefix_chars <= 0:
        return None
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    text = _prompt_text(doc)
    if text is None:
        return None
    model = doc.get("model")
    return f"{model if isinstance(model, str) else ''}\x00{text[:prefix_chars]}"


def _prompt_text(doc: Mapping[str, Any]) -> str | None:
    messages = doc.get("messages")
    if isinstance(messages, list) and messages:
        lines = []
        for message in messages:
            if isinstance(message, dict):
                lines.append(f"{message.get('role', '')}: {_content_text(message.get('content'))}")
        return "\n".join(lines) if lines else None
    prompt = doc.get("prompt")
    if isinstance(prompt, list) and prompt:
        prompt = prompt[0] if isinstance(prompt[0], str | list) else prompt
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
        return " ".join(map(str, prompt))  # token ids: the same ids, the same key
    return None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif isinstance(part.get("image_url"), dict):
                    parts.append(str(part["image_url"].get("url", "")))
        return " ".join(parts)
    return ""


def rendezvous_order(key: str, names: Sequence[str]) -> list[str]:
    """`names` ranked for `key`, best first (highest random weight; stable across processes)."""
    def weight(name: str) -> bytes:
        return hashlib.blake2b(f"{key}\x00{name}".encode(), digest_size=8).digest()

    return sorted(names, key=weight, reverse=True)


def load_cap(outstanding_total: int, replicas: int, load_factor: float = DEFAULT_LOAD_FACTOR) -> int:
    """How many outstanding requests one replica may hold, this one included (rule 2)."""
    return max(1, math.ceil(load_factor * (outstanding_total + 1) / replicas))


@dataclass(frozen=True, kw_only=True)
class Pick:
    name: str
    affinity: bool  # chosen by its prefix (rule 2), not by load alone


def pick(candidates: Sequence[str], outstanding: Mapping[str, int], key: str | None, *,
         load_factor: float = DEFAULT_LOAD_FACTOR, turn: int = 0) -> Pick | None:
    """The replica for a request among `candidates` (None when there is none)."""
    if not candidates:
        return None
    loads = {name: outstanding.get(name, 0) for name in candidates}
    if key is not None:
        cap = load_cap(sum(loads.values()), len(candidates), load_factor)
        for name in rendezvous_order(key, list(candidates)):
            if loads[name] + 1 <= cap:
                return Pick(name=name, affinity=True)
    fewest = min(loads.values())
    tied = sorted(name for name, load in loads.items() if load == fewest)
    return Pick(name=tied[turn % len(tied)], affinity=False)


class Ejections:
    """Which replicas are out, and until when (on `clock`)."""

    def __init__(self, *, base_s: float = 2.0, max_s: float = 60.0,
                 clock: Callable[[], float]) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self._clock = clock
        self._until: dict[str, float] = {}
        self._strikes: dict[str, int] = {}

    def fail(self, name: str) -> bool:
        """Record a failure; True when it ejected the replica (False: it was already out)."""
        if self.is_ejected(name):
            return False
        strikes = self._strikes.get(name, 0) + 1
        self._strikes[name] = strikes
        self._until[name] = self._clock() + min(self.max_s, self.base_s * 2 ** (strikes - 1))
        return True

    def succeed(self, name: str) -> None:
        self._strikes.pop(name, None)
        self._until.pop(name, None)

    def is_ejected(self, name: str) -> bool:
        until = self._until.get(name)
        return until is not None and self._clock() < until

    def usable(self, names: Sequence[str]) -> list[str]:
        """`names` not ejected; all of them when every one is (panic mode)."""
        kept = [n for n in names if not self.is_ejected(n)]
        return kept or list(names)

    def forget_others(self, names: Sequence[str]) -> None:
        """Drop the records of replicas that are gone (a new replica may reuse no name, but be tidy)."""
        keep = set(names)
        for book in (self._until, self._strikes):
            for name in [n for n in book if n not in keep]:
                del book[name]
