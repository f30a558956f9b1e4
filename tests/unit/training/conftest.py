"""Fixtures of the export tests: a small word-piece tokenizer trained here, and its size."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.tokenization import load_tokenizer
from training.tokenization import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer.json trained on three sentences (vocab_size 100 asked)."""
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    texts = ["the cat sat on the mat.", "a dog ran to the north gate.", "where is the cat?"]
    train_tokenizer(texts * 3, vocab_size=100).save(str(path))
    return path


@pytest.fixture(scope="module")
def vocab(tokenizer_path: Path) -> int:
    """The tokenizer's vocabulary size."""
    return load_tokenizer(tokenizer_path).get_vocab_size()
