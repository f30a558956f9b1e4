"""Keras models for ``qa``: a classic two-LSTM baseline and an end-to-end memory network.

Both take ``article_ids`` and ``question_ids`` (int32 ``[batch, length]``, padded with 0) and
return ``answer_probs``, a softmax over the answer vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from serving.contract import PAD_ID

ARCHITECTURES = ("memnet", "classic")
NEGATIVE_LOGIT = -1e9  # added to the scores of empty memory slots before the softmax


@keras.saving.register_keras_serializable(package="multihead_qa")
class SentenceSlots(keras.layers.Layer):  # type: ignore[misc]
    """Assign each word of a story to one of the last ``max_sentences`` sentences.

    Sentences end at ``period_id`` (or at the last word). Returns ``slots`` ``[batch, length,
    max_sentences]``, a one-hot map of word -> sentence counted from the END of the story
    (slot 0 = latest sentence; older sentences are dropped), and ``encoding`` ``[batch,
    length, dim]``, the position-encoding weights of each word in its sentence.
    """

    def __init__(self, max_sentences: int, period_id: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_sentences = max_sentences
        self.period_id = period_id
        self.dim = dim

    def call(self, ids: Any) -> tuple[Any, Any]:
        """Slots and position-encoding weights for a batch of id rows."""
        valid = ops.not_equal(ids, PAD_ID)
        is_period = ops.equal(ids, self.period_id)
        next_valid = ops.pad(valid[:, 1:], [[0, 0], [0, 1]], constant_values=False)
        ends = ops.cast(ops.logical_or(is_period, ops.logical_and(valid, ~next_valid)), "int32")
        # Sentences still to end at or after each word = the word's sentence, counted from the end.
        from_end = ops.sum(ends, axis=1, keepdims=True) - ops.cumsum(ends, axis=1) + ends - 1
        keep = ops.logical_and(ops.logical_and(valid, ~is_period), from_end < self.max_sentences)
        slot_index = ops.clip(from_end, 0, self.max_sentences - 1)
        slots = ops.one_hot(slot_index, self.max_sentences) * ops.expand_dims(
            ops.cast(keep, "float32"), -1
        )
        position = ops.sum(slots * ops.cumsum(slots, axis=1), axis=-1)  # 1-based word position
        length = ops.einsum("bls,bs->bl", slots, ops.sum(slots, axis=1))
        ratio = ops.expand_dims(position / ops.maximum(length, 1.0), -1)
        steps = ops.arange(1, self.dim + 1, dtype="float32") / float(self.dim)
        encoding = (1.0 - ratio) - steps * (1.0 - 2.0 * ratio)
        return slots, encoding

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {
            **super().get_config(),
            "max_sentences": self.max_sentences,
            "period_id": self.period_id,
            "dim": self.dim,
        }


@keras.saving.register_keras_serializable(package="multihead_qa")
class SlotBias(keras.layers.Layer):  # type: ignore[misc]
    """Temporal encoding: a learned vector added to each memory slot (slot 0 = latest)."""

    def __init__(self, slots: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slots = slots
        self.dim = dim

    def build(self, input_shape: Any) -> None:
        """Create the ``[slots, dim]`` table."""
        self.table = self.add_weight(
            shape=(self.slots, self.dim), initializer=keras.initializers.RandomNormal(0.0, 0.1)
        )

    def call(self, memories: Any) -> Any:
        """Add the slot vectors to ``[batch, slots, dim]`` memories."""
        return memories + self.table

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "slots": self.slots, "dim": self.dim}


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
    slots, encoding = SentenceSlots(sentences, period_id, dim, name="story_sentences")(article)
    question_slots, question_encoding = SentenceSlots(1, -1, dim, name="question_words")(question)
    embeddings = [
        keras.layers.Embedding(vocab_size, dim, name=f"memory_embedding_{index}")
        for index in range(hops + 1)
    ]
    present = ops.cast(ops.sum(slots, axis=1) > 0, "float32")  # [batch, slots]
    state = ops.einsum("bls,bld->bd", question_slots, question_encoding * embeddings[0](question))
    for hop in range(hops):
        keys = _memories(slots, encoding, embeddings[hop](article), sentences, f"key_time_{hop}")
        values = _memories(
            slots, encoding, embeddings[hop + 1](article), sentences, f"value_time_{hop}"
        )
        scores = ops.einsum("bsd,bd->bs", keys, state) + (1.0 - present) * NEGATIVE_LOGIT
        attention = ops.softmax(scores, axis=-1)
        state = state + ops.einsum("bs,bsd->bd", attention, values)
    state = keras.layers.Dropout(float(hparams.get("dropout", 0.0)))(state)
    probs = keras.layers.Dense(answers, activation="softmax", name="answer_probs")(state)
    return keras.Model(
        {"article_ids": article, "question_ids": question}, {"answer_probs": probs}, name="qa"
    )


def _memories(
    slots: keras.KerasTensor,
    encoding: keras.KerasTensor,
    word_vectors: keras.KerasTensor,
    sentences: int,
    name: str,
) -> keras.KerasTensor:
    bags = ops.einsum("bls,bld->bsd", slots, encoding * word_vectors)
    return SlotBias(sentences, int(word_vectors.shape[-1]), name=name)(bags)
