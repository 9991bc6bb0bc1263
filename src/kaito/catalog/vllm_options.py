"""vLLM's command-line option names, so admission refuses a misspelt `inference.config` key before a pod starts.

The runtime-parameter file's `vllm:` map names `vllm serve` options (without `--`). vLLM refuses an
option it does not have when the pod starts, which on a cluster means a GPU node bought and a pod
that never serves. The names of the pinned vLLM's options ship as package data (`vllm_options.txt`,
written from that vLLM's own parser by `scripts/gen-vllm-options`; the vLLM lane checks it still
equals the installed vLLM's), so `kaito validate`, the webhook and the controller's re-check name
the key at fault first. Values are left to vLLM: its refusal at start is the backstop, and it
reaches the Workspace's conditions through the pod's termination message.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

DATA_FILE = "vllm_options.txt"


@dataclass(frozen=True)
class VllmOptions:
    version: str  # the vLLM whose parser the names come from
    names: frozenset[str]  # `--max-num-seqs`, `--no-enable-prefix-caching`, ...


def parse_vllm_options(text: str) -> VllmOptions:
    """The data file: a `# vllm <version>: ...` header, then one `--option` per line."""
    version = ""
    names: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("# vllm "):
            version = line.removeprefix("# vllm ").split(":", 1)[0].strip()
        elif line.startswith("--"):
            names.add(line)
    return VllmOptions(version=version, names=frozenset(names))


@functools.cache
def load_vllm_options() -> VllmOptions:
    """The option names of the vLLM this release pins (read once from the package data)."""
    text = resources.files("kaito.catalog").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return parse_vllm_options(text)
