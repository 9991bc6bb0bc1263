"""Session-wide fixtures: factories, not shared mutable globals.

huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE when it is first imported, so both are set
here, before any test module imports it: tests never download, and the tiny model's cache is the
one every `from_pretrained("ORG/NAME")` in the session (and its child processes) resolves against.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_HF_CACHE = Path(tempfile.mkdtemp(prefix="kaito-test-hf-"))
os.environ["HF_HUB_CACHE"] = str(_HF_CACHE)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny random Llama in the session's Hugging Face cache; hub lookups stay offline."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.support.tiny_model import build_tiny_model

    model = build_tiny_model(_HF_CACHE)
    os.environ["KAITO_TEST_TINY_MODEL"] = str(model.path)
    return model
