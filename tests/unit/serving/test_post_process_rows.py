"""id_matrix's rows: post-processed by the tokenizer, or its cut ids as they are when
post-processing would give them back unchanged (no post-processor, truncation or padding)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from tokenizers import Tokenizer, processors

from serving.spec import Truncation
from serving.tokenization import adds_nothing, cut_to_fit, id_matrix, plain_encodings
from training.tokenization import train_tokenizer

WORDS = ["one", "two", "three", "[SEP]", "[PAD]", "zebra", "Café", ",", "!", "  ", "\t"]


def _plain() -> Tokenizer:
    return train_tokenizer(["one two three, four!", "Café zebra [SEP] two"], vocab_size=40)


def _templated() -> Tokenizer:
    tokenizer = _plain()
    sep = tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[SEP] $A [SEP]", pair="[SEP] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[SEP]", sep)]
    )
    return tokenizer


def _padded() -> Tokenizer:
    tokenizer = _plain()
    tokenizer.enable_padding(length=12, pad_id=0)
    return tokenizer


def _truncating() -> Tokenizer:
    tokenizer = _plain()
    tokenizer.enable_truncation(max_length=3)
    return tokenizer


def _reference(
    tokenizer: Tokenizer, texts: list[str], max_length: int, truncation: Truncation, special: bool
) -> list[list[int]]:
    """The matrix as id_matrix built it with every row post-processed."""
    encodings = plain_encodings(tokenizer, texts)
    rows = [
        tokenizer.post_process(
            cut_to_fit(tokenizer, encoding, max_length, truncation, special), None, special
        ).ids
        for encoding in encodings
    ]
    width = max([1, *(len(row) for row in rows)])
    matrix = np.full((len(rows), width), 0, dtype=np.int32)
    for index, row in enumerate(rows):
        matrix[index, : len(row)] = row
    return matrix.tolist()


def test_only_a_tokenizer_that_adds_nothing_skips_post_processing() -> None:
    assert adds_nothing(_plain())
    assert not adds_nothing(_templated())
    assert not adds_nothing(_padded())
    assert not adds_nothing(_truncating())


@pytest.mark.parametrize("make", [_plain, _templated, _padded, _truncating])
def test_rows_are_the_post_processed_ones(make) -> None:
    tokenizer, generator = make(), random.Random(9)
    for _ in range(60):
        texts = [
            " ".join(generator.choices(WORDS, k=generator.randint(0, 30)))
            for _ in range(generator.randint(1, 3))
        ]
        for max_length in (3, 4, 7, 40):  # at least the template's 2 specials + 1
            truncation: Truncation
            for truncation in ("left", "right"):
                for special in (True, False):
                    matrix = id_matrix(
                        tokenizer,
                        plain_encodings(tokenizer, texts),
                        max_length,
                        truncation,
                        add_special_tokens=special,
                        pad_id=0,
                    )
                    assert matrix.tolist() == _reference(
                        tokenizer, texts, max_length, truncation, special
                    )
