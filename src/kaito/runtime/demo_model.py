"""An untrained tiny chat model built on this machine, for the quickstart when the Hub is unreachable.

`scripts/demo` serves a small instruct model from the Hugging Face Hub. Where the Hub cannot be
reached (an offline machine, a locked-down CI), it serves this instead so the whole path still runs:
a byte-level BPE tokenizer trained on Python's own sources, a chat template, and a randomly
initialised two-layer Llama, written into a Hugging Face cache layout so that the ordinary
`from_pretrained("kaito-demo/tiny-chat")` path finds it with `HF_HUB_OFFLINE=1`. Its answers are
noise: the demo says so.

    python -m kaito.runtime.demo_model --cache DIR      # builds (once) and prints the model id
    python -m kaito.runtime.demo_model --hub-reachable  # exit 0 when huggingface.co answers
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

DEMO_REPO = "kaito-demo/tiny-chat"
DEMO_REVISION = "de30de30de30de30de30de30de30de30de30de30"
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
SPECIAL_TOKENS = ["<unk>", "<s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]


def _training_text() -> str:
    import inspect
    import json
    import string
    import textwrap

    # Any sizeable text makes a usable byte-level vocabulary; the standard library is always here.
    return "".join(inspect.getsource(m) for m in (json, textwrap, string))


def build_demo_model(cache: Path, repo_id: str = DEMO_REPO, revision: str = DEMO_REVISION) -> Path:
    """Write the demo model into the hub cache `cache` (idempotent); returns its snapshot folder."""
    org, name = repo_id.split("/")
    repo_dir = cache / f"models--{org}--{name}"
    snapshot = repo_dir / "snapshots" / revision
    if (snapshot / "config.json").is_file() and (snapshot / "model.safetensors").is_file():
        return snapshot
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    snapshot.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator([_training_text()], trainer=trainers.BpeTrainer(
        vocab_size=2000, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="<|end|>",
                                   unk_token="<unk>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(snapshot)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(snapshot, safe_serialization=True)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    return snapshot


def hub_reachable(timeout_s: float = 5.0) -> bool:
    """Whether huggingface.co answers at all (any HTTP status counts; a network error does not)."""
    import httpx

    try:
        httpx.head("https://huggingface.co/api/models/Qwen/Qwen2.5-0.5B-Instruct", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kaito.runtime.demo_model", description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, help="Hugging Face hub cache folder to build the demo model in")
    parser.add_argument("--hub-reachable", action="store_true", help="exit 0 if huggingface.co answers, else 1")
    opts = parser.parse_args(argv)
    if opts.hub_reachable:
        return 0 if hub_reachable() else 1
    if opts.cache is None:
        parser.error("give --cache DIR or --hub-reachable")
    print(f"building the untrained demo model {DEMO_REPO} in {opts.cache} …", file=sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):  # library progress bars must not mix with the printed id
        build_demo_model(opts.cache)
    print(DEMO_REPO)
    return 0


if __name__ == "__main__":
    sys.exit(main())
