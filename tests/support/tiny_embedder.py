"""Builds a tiny random BERT embedding model with a trained WordPiece tokenizer, offline.

Laid out as a Hugging Face hub cache (`models--ORG--NAME/snapshots/<rev>/`, `refs/main`) so the
RAG service's real `AutoModel.from_pretrained("ORG/NAME")` path runs with `HF_HUB_OFFLINE=1`.
The weights are random: dense similarities mean little, which is why retrieval tests that need a
right answer lean on the BM25 side, and tests of the dense side compare with numbers computed here.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

TINY_EMBEDDER_REPO = "kaito-test/tiny-bert"
TINY_EMBEDDER_REVISION = "fedcba9876543210fedcba9876543210fedcba98"


@dataclass(frozen=True)
class TinyEmbedder:
    repo_id: str
    path: Path  # snapshot directory (also usable as a local model dir)
    cache_dir: Path
    dimension: int


def _corpus() -> str:
    import argparse
    import json

    return inspect.getsource(json) + inspect.getsource(argparse) + (
        "\nretrieval augmented generation indexes documents and answers questions. kubernetes operators "
        "reconcile custom resources. the quick brown fox jumps over the lazy dog.\n" * 20)


def build_tiny_embedder(root: Path, repo_id: str = TINY_EMBEDDER_REPO, revision: str = TINY_EMBEDDER_REVISION,
                        hidden_size: int = 32, layers: int = 2, vocab_size: int = 2000, seed: int = 0
                        ) -> TinyEmbedder:
    """Write the model under `root` (a hub cache dir) unless it is there; return where it is."""
    org, name = repo_id.split("/")
    repo_dir = Path(root) / f"models--{org}--{name}"
    snapshot = repo_dir / "snapshots" / revision
    if (snapshot / "config.json").exists():
        return TinyEmbedder(repo_id, snapshot, Path(root), hidden_size)

    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    snapshot.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator([_corpus()], trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]", mask_token="[MASK]", model_max_length=512)
    fast.save_pretrained(snapshot)

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(fast), hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden_size * 2, max_position_embeddings=512,
                        pad_token_id=fast.pad_token_id)
    BertModel(config).save_pretrained(snapshot, safe_serialization=True)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    return TinyEmbedder(repo_id, snapshot, Path(root), hidden_size)
