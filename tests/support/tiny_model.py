"""Builds a tiny random Llama with a trained tokenizer and a chat template, offline.

The model is laid out as a Hugging Face hub cache (`models--ORG--NAME/snapshots/<rev>/`), so the
real `from_pretrained("ORG/NAME")` path runs with `HF_HUB_OFFLINE=1`. Build once per session.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path

TINY_REPO = "kaito-test/tiny-llama"
TINY_REVISION = "0123456789abcdef0123456789abcdef01234567"
VLLM_TINY_REPO = "kaito-test/tiny-llama-vllm"  # the same tiny Llama with head size 32 (vLLM on CPU)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyModel:
    repo_id: str  # hub id that resolves offline through the cache below
    revision: str
    path: Path  # the snapshot directory (also usable as a local model dir)
    cache_dir: Path  # value for HF_HUB_CACHE / HF_HOME/hub

    def env(self) -> dict[str, str]:
        """Environment that makes `from_pretrained(repo_id)` resolve offline."""
        return {
            "HF_HUB_CACHE": str(self.cache_dir),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }


def _corpus() -> str:
    import json
    import textwrap

    # Any sizeable text works for a byte-level BPE; stdlib sources are always at hand.
    text = inspect.getsource(json) + inspect.getsource(textwrap)
    return text + "\nhello world. the quick brown fox jumps over the lazy dog.\n" * 20


def build_tiny_model(root: Path, repo_id: str = TINY_REPO, revision: str = TINY_REVISION,
                     seed: int = 0, vocab_size: int = 1000, *, hidden_size: int = 64, num_heads: int = 4,
                     num_layers: int = 2) -> TinyModel:
    """Write the tiny model under `root` (a hub cache dir) and return where it is.

    vLLM's CPU attention needs a head size of at least 32: its lane uses `num_heads=2` (see
    `VLLM_TINY_REPO`); the default shape (head size 16) is the one the other tests were written for.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    org, name = repo_id.split("/")
    repo_dir = root / f"models--{org}--{name}"
    snapshot = repo_dir / "snapshots" / revision
    if (snapshot / "config.json").exists():
        return TinyModel(repo_id, revision, snapshot, root)
    snapshot.mkdir(parents=True, exist_ok=True)

    special = ["<unk>", "<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_corpus()], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|end|>",
                                   unk_token="<unk>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(snapshot)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_heads,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(snapshot, safe_serialization=True)

    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    return TinyModel(repo_id, revision, snapshot, root)


def tiny_model_from_env() -> TinyModel | None:
    """The session's tiny model when a parent process (a pytest fixture) already built it."""
    path = os.environ.get("KAITO_TEST_TINY_MODEL")
    if not path:
        return None
    snapshot = Path(path)
    return TinyModel(TINY_REPO, snapshot.name, snapshot, snapshot.parents[2])
