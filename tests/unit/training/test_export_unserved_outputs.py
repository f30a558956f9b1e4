"""A model output no head of the spec reads is left out of the export: said, not silent."""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import pytest

from serving.spec import BinaryHead, HeadSpec, RegressionHead, ServingSpec, TextInput
from serving.tokenization import load_tokenizer
from training.spec_check import SpecMismatchError, check_model


def _model(vocab: int) -> keras.Model:
    ids = keras.Input((None,), dtype="int32", name="text_ids")
    pooled = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(vocab, 4, mask_zero=True)(ids)
    )
    spam = keras.layers.Dense(1, activation="sigmoid", name="spam")(pooled)
    stars = keras.layers.Dense(1, name="stars")(pooled)
    return keras.Model({"text_ids": ids}, {"spam": spam, "stars": stars})


def _spec(vocab: int, *, with_stars: bool) -> ServingSpec:
    heads: list[HeadSpec] = [BinaryHead(output="spam", field="spam", labels=("ham", "spam"))]
    if with_stars:
        heads.append(RegressionHead(output="stars", field="stars"))
    text = TextInput(field="text", tensor="text_ids", max_tokens=16, vocab_size=vocab)
    return ServingSpec(title="t", inputs=[text], heads=heads, example={"text": "the cat sat."})


def test_a_model_output_without_a_head_is_named_at_export(
    tokenizer_path: Path, vocab: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the new-user trial (newuser11): a spec that forgot the regression head of a
    # three-head model was exported without a word; its field was never served.
    tokenizers = {"tokenizer.json": load_tokenizer(tokenizer_path)}
    with caplog.at_level(logging.WARNING, logger="training.spec_check"):
        check_model(_model(vocab), _spec(vocab, with_stars=False), tokenizers)
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    message = caplog.records[0].getMessage()
    assert "model outputs ['stars'] have no head in the spec" in message
    assert "never served" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="training.spec_check"):
        check_model(_model(vocab), _spec(vocab, with_stars=True), tokenizers)
    assert caplog.records == []


def test_a_head_output_typo_is_given_the_closest_model_output(
    tokenizer_path: Path, vocab: int
) -> None:
    # Found by the new-user trial (newuser11): output="tag" for the model output "tags" was
    # told only the list of outputs, while a spec tensor's typo got "did you mean".
    tokenizers = {"tokenizer.json": load_tokenizer(tokenizer_path)}
    spec = _spec(vocab, with_stars=True)
    typo = spec.model_copy(
        update={"heads": [spec.heads[0], RegressionHead(output="star", field="stars")]}
    )
    with pytest.raises(SpecMismatchError) as caught:
        check_model(_model(vocab), typo, tokenizers)
    assert (
        "output 'star' is not a model output (outputs: ['spam', 'stars']) (did you mean "
        "'stars'?)" in str(caught.value)
    )
