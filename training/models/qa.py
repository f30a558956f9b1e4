"""Keras models for ``qa``: a classic two-LSTM baseline and an end-to-end memory network.

Both take ``article_ids`` and ``question_ids`` (int32 ``[batch, length]``, padded with 0) and
return ``answer_probs``, a softmax over the answer vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from training.models.qa_layers import HopAttention, SentenceBags, SentenceSlots, SlotBias

ARCHITECTURES = ("memnet", "classic")


def build_qa_model(
    hparams: Mapping[str, Any], vocab_size: int, answers: int, period_id: int
) -> keras.Model:
    """The architecture named by ``hparams["arch"]``, compiled."""
    arch = hparams.get("arch", "memnet")
    if arch == "memnet":
        model = memory_network(hparams, vocab_size, answers, period_id)
    elif arch == "classic":
        model = classic_model(hparams, vocab_size, answers)
    else:
        raise ValueError(f"unknown qa architecture {arch!r}; choose from {ARCHITECTURES}")
    optimizer = keras.optimizers.Adam(
        learning_rate=float(hparams["learning_rate"]), clipnorm=float(hparams.get("clipnorm", 40))
    )
    model.compile(
        optimizer=optimizer,
        loss={"answer_probs": "sparse_categorical_crossentropy"},
        metrics={"answer_probs": ["accuracy"]},
    )
    return model


def _inputs() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    article = keras.Input((None,), dtype="int32", name="article_ids")
    question = keras.Input((None,), dtype="int32", name="question_ids")
    return article, question


def classic_model(hparams: Mapping[str, Any], vocab_size: int, answers: int) -> keras.Model:
    """Embedding + LSTM per input, concatenated, dense softmax (the classic Keras baseline)."""
    article, question = _inputs()
    width, units = int(hparams["embedding_dim"]), int(hparams["lstm_units"])
    dropout = float(hparams.get("dropout", 0.3))
    # Embedding(input_dim=vocabulary size, output_dim=vector width): the classic example swaps them.
    article_vector = keras.layers.LSTM(units, name="article_lstm")(
        keras.layers.Embedding(vocab_size, width, mask_zero=True, name="article_embedding")(article)
    )
    question_vector = keras.layers.LSTM(units, name="question_lstm")(
        keras.layers.Embedding(vocab_size, width, mask_zero=True, name="question_embedding")(
            question
        )
    )
    merged = keras.layers.Concatenate()([article_vector, question_vector])
    merged = keras.layers.Dropout(dropout)(merged)
    probs = keras.layers.Dense(answers, activation="softmax", name="answer_probs")(merged)
    return keras.Model(
        {"article_ids": article, "question_ids": question}, {"answer_probs": probs}, name="qa"
    )


def memory_network(
    hparams: Mapping[str, Any], vocab_size: int, answers: int, period_id: int
) -> keras.Model:
    """End-to-end memory network: attention hops over the story's last sentences.

    Adjacent weight tying (the question embedding is the first hop's input embedding, each
    hop's output embedding is the next hop's input embedding), position encoding of words in
    a sentence and temporal encoding of sentences.
    """
    article, question = _inputs()
    dim, hops = int(hparams["embedding_dim"]), int(hparams["hops"])
    sentences = int(hparams["max_sentences"])
    slot_ids, encoding, present = SentenceSlots(sentences, period_id, dim, name="story")(article)
    question_ids, question_encoding, _ = SentenceSlots(1, -1, dim, name="question")(question)
    embeddings = [
        keras.layers.Embedding(vocab_size, dim, name=f"memory_embedding_{index}")
        for index in range(hops + 1)
    ]
    question_bag = SentenceBags(1, name="question_bag")(
        [question_ids, question_encoding * embeddings[0](question)]
    )
    state = ops.squeeze(question_bag, axis=1)
    for hop in range(hops):
        keys = _memories(slot_ids, encoding, embeddings[hop](article), hparams, f"keys_{hop}")
        values = _memories(
            slot_ids, encoding, embeddings[hop + 1](article), hparams, f"values_{hop}"
        )
        gated = bool(hparams.get("gated_hops", False))
        state = HopAttention(gated, name=f"hop_{hop}")([keys, values, state, present])
    if int(hparams.get("answer_hidden", 0)):
        state = keras.layers.Dense(int(hparams["answer_hidden"]), activation="relu")(state)
    state = keras.layers.Dropout(float(hparams.get("dropout", 0.0)))(state)
    probs = keras.layers.Dense(answers, activation="softmax", name="answer_probs")(state)
    return keras.Model(
        {"article_ids": article, "question_ids": question}, {"answer_probs": probs}, name="qa"
    )


def _memories(
    slot_ids: keras.KerasTensor,
    encoding: keras.KerasTensor,
    word_vectors: keras.KerasTensor,
    hparams: Mapping[str, Any],
    name: str,
) -> keras.KerasTensor:
    sentences, noise = int(hparams["max_sentences"]), float(hparams.get("time_noise", 0.0))
    bags = SentenceBags(sentences, name=f"{name}_bags")([slot_ids, encoding * word_vectors])
    return SlotBias(sentences, int(word_vectors.shape[-1]), noise, name=f"{name}_time")(bags)
