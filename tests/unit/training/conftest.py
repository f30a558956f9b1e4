"""Fixtures of the training tests: a small word-piece tokenizer trained here, and its size;
one tiny ``train qa`` CLI run for the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.tokenization import load_tokenizer
from training.tokenization import train_tokenizer

BABI_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "babi"


@pytest.fixture(scope="session")
def qa_cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train qa --preset tiny`` on the bAbI fixtures, run once: the folder holding its
    ``repo`` (the exported version) and ``runs`` (the one run folder). Read it only; a test
    that writes beside a run trains its own."""
    from training.cli import main

    root = tmp_path_factory.mktemp("qa_cli")
    argv = ["train", "qa", "--preset", "tiny", "--data-dir", str(BABI_FIXTURES)]
    argv += ["--model-repo", str(root / "repo"), "--runs-dir", str(root / "runs")]
    assert main(argv) == 0
    return root


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
