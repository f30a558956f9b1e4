"""A cross-encoder (BERT's ``[CLS] a [SEP] b [SEP]`` with token types) is served from two
inputs through ``training.pair_input.JoinedPair``: inside the model the served ids become
exactly ``tokenizer.encode(a, b)``'s ids and type ids, and the export's checks pass."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from serving.encoding import encode_instances
from serving.spec import CategoricalHead, ServingSpec, TextInput
from training.export import export_for_serving
from training.pair_input import JoinedPair

TEXTS = ["a man plays a guitar", "a person plays an instrument", "the cat sleeps on the sofa"]
PAIRS = [("a man plays a guitar", "a person plays"), ("the cat", "the cat sleeps on the sofa")]


def _bert_like_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer()
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tokenizer.train_from_iterator(
        TEXTS, trainers.WordPieceTrainer(vocab_size=80, special_tokens=special)
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tokenizer


def _spec(vocab: int) -> ServingSpec:
    return ServingSpec(
        title="pairs",
        inputs=[
            TextInput(field="premise", tensor="premise_ids", max_tokens=16, vocab_size=vocab),
            TextInput(field="hypothesis", tensor="hypothesis_ids", max_tokens=16, vocab_size=vocab),
        ],
        heads=[CategoricalHead(output="label", field="label", labels=["yes", "no"])],
        example={"premise": "a man plays", "hypothesis": "a person plays"},
    )


def test_the_joined_ids_are_the_tokenizers_pair_encoding() -> None:
    # Found as a new user: the spec encodes each input alone, and nothing said how to serve a
    # model trained on tokenizer.encode(a, b) (one sequence, token type ids).
    tokenizer = _bert_like_tokenizer()
    spec = _spec(tokenizer.get_vocab_size())
    instances = [{"premise": a, "hypothesis": b} for a, b in PAIRS]
    served = encode_instances(spec, {"tokenizer.json": tokenizer}, instances)
    ids, types = JoinedPair()(served["premise_ids"], served["hypothesis_ids"])
    for row, (a, b) in enumerate(PAIRS):
        expected = tokenizer.encode(a, b)
        width = len(expected.ids)
        assert ids.numpy()[row, :width].tolist() == expected.ids
        assert types.numpy()[row, :width].tolist() == expected.type_ids
        assert not ids.numpy()[row, width:].any()  # padding only after the pair


def test_a_pad_id_other_than_0_joins_rows_padded_with_0_too() -> None:
    """With pad_id 1 (a RoBERTa's <pad>), the model server's batching pads a batch with 0 (it
    reads no spec) after the gateway's 1s: JoinedPair(pad_id=1) kept those 0s as text, between
    the two texts, so a request's answer moved with its batch (the export's padding probe
    refused every such model). Found by the adversarial pass breaknew6b."""
    first = tf.constant([[5, 6, 2, 1, 1], [5, 2, 1, 1, 1]], tf.int32)
    second = tf.constant([[0, 7, 2, 1], [0, 8, 9, 2]], tf.int32)  # RoBERTa's <s> is 0
    joined = JoinedPair(pad_id=1)
    ids, types = joined(first, second)
    padded_ids, padded_types = joined(
        tf.pad(first, [[0, 0], [0, 2]]), tf.pad(second, [[0, 0], [0, 3]])
    )
    assert ids.numpy().tolist() == [[5, 6, 2, 7, 2], [5, 2, 8, 9, 2]]
    assert types.numpy().tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 1, 1]]
    assert padded_ids.numpy().tolist() == ids.numpy().tolist()
    assert padded_types.numpy().tolist() == types.numpy().tolist()


def test_a_cross_encoder_is_exported_and_answers_as_on_the_pair(tmp_path: Path) -> None:
    tokenizer = _bert_like_tokenizer()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    vocab = tokenizer.get_vocab_size()
    keras.utils.set_random_seed(1)
    premise = keras.Input((None,), dtype="int32", name="premise_ids")
    hypothesis = keras.Input((None,), dtype="int32", name="hypothesis_ids")
    ids, types = JoinedPair()(premise, hypothesis)
    vectors = keras.layers.Embedding(vocab, 8, mask_zero=True)(ids)
    vectors = keras.layers.Add()([vectors, keras.layers.Embedding(2, 8)(types)])
    pooled = keras.layers.GlobalAveragePooling1D()(vectors)
    label = keras.layers.Dense(2, activation="softmax", name="label")(pooled)
    model = keras.Model({"premise_ids": premise, "hypothesis_ids": hypothesis}, {"label": label})
    spec = _spec(vocab)
    files = {"tokenizer.json": tmp_path / "tokenizer.json"}
    version = export_for_serving(model, spec, files, name="pairs", repo=tmp_path / "repo")
    instances = [{"premise": a, "hypothesis": b} for a, b in PAIRS]
    served = encode_instances(spec, {"tokenizer.json": tokenizer}, instances)
    answers = tf.saved_model.load(str(version)).signatures["serving_default"](
        **{name: tf.constant(value) for name, value in served.items()}
    )
    body = keras.Model([ids, types], label)  # the model after the join
    for row, (a, b) in enumerate(PAIRS):  # fed the tokenizer's own pair encoding
        expected = tokenizer.encode(a, b)
        alone = body([np.array([expected.ids]), np.array([expected.type_ids])])
        np.testing.assert_allclose(answers["label"].numpy()[row], alone[0], rtol=1e-5)
