"""Layers of the ``qa`` end-to-end memory network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from serving.contract import PAD_ID

NEGATIVE_LOGIT = -1e9  # added to the scores of empty memory slots before the softmax


@keras.saving.register_keras_serializable(package="multihead_qa")
class SentenceSlots(keras.layers.Layer):  # type: ignore[misc]
    """Assign each word of a story to one of its last ``max_sentences`` sentences.

    Sentences end at ``period_id`` (or at the last word) and are counted from the END of
    the story (slot 0 = latest sentence; older ones are dropped). Returns ``slot_ids``
    ``[batch, length]`` (``row * max_sentences + slot``; ``batch * max_sentences`` for a
    period, padding or a dropped word), ``encoding`` ``[batch, length, dim]``, the position
    encoding weights of each word in its sentence, and ``present`` ``[batch, max_sentences]``
    (1.0 where the slot holds a sentence).
    """

    def __init__(self, max_sentences: int, period_id: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_sentences = max_sentences
        self.period_id = period_id
        self.dim = dim

    def call(self, ids: Any) -> tuple[Any, Any, Any]:
        """Slot ids, position-encoding weights and slot presence for a batch of id rows."""
        slots = self.max_sentences
        valid = ops.not_equal(ids, PAD_ID)
        is_period = ops.equal(ids, self.period_id)
        next_valid = ops.pad(valid[:, 1:], [[0, 0], [0, 1]], constant_values=False)
        ends = ops.cast(ops.logical_or(is_period, ops.logical_and(valid, ~next_valid)), "int32")
        # Sentences ending at or after a word = the word's sentence, counted from the end.
        from_end = ops.sum(ends, axis=1, keepdims=True) - ops.cumsum(ends, axis=1) + ends - 1
        keep = ops.logical_and(ops.logical_and(valid, ~is_period), from_end < slots)
        slot = ops.clip(from_end, 0, slots - 1)
        outside = ops.shape(ids)[0] * slots
        slot_ids = ops.where(
            keep, ops.expand_dims(ops.arange(ops.shape(ids)[0]) * slots, 1) + slot, outside
        )
        kept = ops.cast(keep, "int32")
        counts = ops.segment_sum(
            ops.reshape(kept, [-1]), ops.reshape(slot_ids, [-1]), num_segments=outside + 1
        )
        counts = ops.reshape(counts[:outside], [-1, slots])  # words per sentence
        older = ops.sum(counts, axis=1, keepdims=True) - ops.cumsum(counts, axis=1)
        # Kept words so far minus those of older sentences = 1-based position in the sentence.
        position = ops.cumsum(kept, axis=1) - ops.take_along_axis(older, slot, axis=1)
        length = ops.take_along_axis(counts, slot, axis=1)
        ratio = ops.cast(position, "float32") / ops.cast(ops.maximum(length, 1), "float32")
        ratio = ops.expand_dims(ratio, -1)
        steps = ops.arange(1, self.dim + 1, dtype="float32") / float(self.dim)
        encoding = ((1.0 - ratio) - steps * (1.0 - 2.0 * ratio)) * ops.expand_dims(
            ops.cast(keep, "float32"), -1
        )
        return slot_ids, encoding, ops.cast(counts > 0, "float32")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {
            **super().get_config(),
            "max_sentences": self.max_sentences,
            "period_id": self.period_id,
            "dim": self.dim,
        }


@keras.saving.register_keras_serializable(package="multihead_qa")
class SentenceBags(keras.layers.Layer):  # type: ignore[misc]
    """Sum word vectors per sentence slot: ``[batch, length, dim]`` -> ``[batch, slots, dim]``."""

    def __init__(self, max_sentences: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_sentences = max_sentences

    def call(self, inputs: list[Any]) -> Any:
        """Bags of ``[slot_ids, vectors]``; words outside every slot are discarded."""
        slot_ids, vectors = inputs
        dim = vectors.shape[-1]
        outside = ops.shape(vectors)[0] * self.max_sentences
        sums = ops.segment_sum(
            ops.reshape(vectors, [-1, dim]), ops.reshape(slot_ids, [-1]), num_segments=outside + 1
        )
        return ops.reshape(sums[:outside], [-1, self.max_sentences, dim])

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "max_sentences": self.max_sentences}


@keras.saving.register_keras_serializable(package="multihead_qa")
class SlotBias(keras.layers.Layer):  # type: ignore[misc]
    """Temporal encoding: a learned vector added to each memory slot (slot 0 = latest).

    With ``noise`` > 0, training shifts slots back at random as if about that fraction of
    empty sentences had been inserted ("random noise" of end-to-end memory networks), so
    the model cannot rely on exact sentence distances.
    """

    def __init__(self, slots: int, dim: int, noise: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slots = slots
        self.dim = dim
        self.noise = noise
        self.seeds = keras.random.SeedGenerator(1)

    def build(self, input_shape: Any) -> None:
        """Create the ``[slots, dim]`` table."""
        self.table = self.add_weight(
            shape=(self.slots, self.dim), initializer=keras.initializers.RandomNormal(0.0, 0.1)
        )

    def call(self, memories: Any, training: bool | None = None) -> Any:
        """Add the slot vectors to ``[batch, slots, dim]`` memories."""
        if not training or self.noise <= 0:
            return memories + self.table
        batch = ops.shape(memories)[0]
        inserted = keras.random.uniform((batch, self.slots), seed=self.seeds) < self.noise
        shifted = ops.arange(self.slots) + ops.cumsum(ops.cast(inserted, "int32"), axis=1)
        return memories + ops.take(self.table, ops.minimum(shifted, self.slots - 1), axis=0)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "slots": self.slots, "dim": self.dim, "noise": self.noise}


@keras.saving.register_keras_serializable(package="multihead_qa")
class HopAttention(keras.layers.Layer):  # type: ignore[misc]
    """One memory hop: attend over memory keys with the state, add the attended values.

    With ``gated``, a learned gate decides per dimension how much of the state the read
    replaces (gated end-to-end memory networks), so a hop can drop what it no longer needs.
    """

    def __init__(self, gated: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gated = gated

    def build(self, input_shape: Any) -> None:
        """Create the gate's weights (gated hops only)."""
        if self.gated:
            dim = input_shape[2][-1]
            self.gate_kernel = self.add_weight(shape=(dim, dim), initializer="glorot_uniform")
            self.gate_bias = self.add_weight(shape=(dim,), initializer="zeros")

    def call(self, inputs: list[Any]) -> tuple[Any, Any]:
        """``(new state [batch, dim], attention [batch, slots])`` from ``[keys, values, state,
        present]`` (present: 1.0 for a real slot; absent slots get attention exactly 0)."""
        keys, values, state, present = inputs
        scores = ops.einsum("bsd,bd->bs", keys, state) + (1.0 - present) * NEGATIVE_LOGIT
        # Times present: a story without any sentence attends to nothing (not uniformly).
        attention = ops.softmax(scores, axis=-1) * present
        read = ops.einsum("bs,bsd->bd", attention, values)
        if not self.gated:
            return state + read, attention
        gate = ops.sigmoid(ops.matmul(state, self.gate_kernel) + self.gate_bias)
        return gate * read + (1.0 - gate) * state, attention

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "gated": self.gated}


@keras.saving.register_keras_serializable(package="multihead_qa")
class QuestionMatch(keras.layers.Layer):  # type: ignore[misc]
    """Exact-match features: which question position each article word also occurs at.

    For ``[article_ids [batch, length], question_ids [batch, q]]`` (int32, 0 = padding)
    returns float32 ``[batch, length, dim]``: the sum of a learned vector per question
    position over the question positions holding the same token id (0 for padding and for
    words the question lacks). Added to the word vectors before the position-encoded
    sentence bags, "A is north of B" carries *where* the question's words sit in the
    sentence ("the place asked from is this sentence's subject") without depending on which
    words they are, which a bag of word embeddings learns poorly from 1k examples
    (exact-match features of reading-comprehension models, e.g. DrQA). Question positions
    beyond ``question_slots`` share the last vector.
    """

    def __init__(self, question_slots: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.question_slots = question_slots
        self.dim = dim

    def build(self, input_shape: Any) -> None:
        """Create the ``[question_slots, dim]`` table."""
        self.table = self.add_weight(
            shape=(self.question_slots, self.dim),
            initializer=keras.initializers.RandomNormal(0.0, 0.1),
        )

    def call(self, inputs: list[Any]) -> Any:
        """Match vectors of ``[article_ids, question_ids]``."""
        article, question = inputs
        same = ops.equal(ops.expand_dims(article, 2), ops.expand_dims(question, 1))
        real = ops.expand_dims(ops.not_equal(question, PAD_ID), 1)
        match = ops.cast(ops.logical_and(same, real), "float32")  # [batch, length, q]
        rows = ops.minimum(ops.arange(ops.shape(question)[1]), self.question_slots - 1)
        return ops.einsum("blq,qd->bld", match, ops.take(self.table, rows, axis=0))

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "question_slots": self.question_slots, "dim": self.dim}


@keras.saving.register_keras_serializable(package="multihead_qa")
class MatchRoles(keras.layers.Layer):  # type: ignore[misc]
    """Where in its sentence each article word that the question holds sits: start or end.

    For ``[article_ids [batch, length], question_ids [batch, q], encoding [batch, length,
    dim]]`` (``encoding``: :class:`SentenceSlots`' position weights, 0 for words outside
    every slot) returns float32 ``[batch, length, 2 * question_slots]``: column ``k`` is the
    word's start weight (``encoding[..., 0]``, about ``1 - position / length``) if it equals
    the question's word at position ``k``, column ``question_slots + k`` its end weight
    (``encoding[..., -1]`` = ``position / length``); 0 where it does not match. Summed per
    sentence (:class:`SentenceBags`), "The kitchen is north of the office." read against
    "How do you go from the kitchen to ...?" gives "the place asked from is the subject" as
    fixed features, for a per-sentence layer to bind with the direction word. No weights.
    Question positions beyond ``question_slots`` share the last column pair.
    """

    def __init__(self, question_slots: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.question_slots = question_slots

    def call(self, inputs: list[Any]) -> Any:
        """Start and end match weights of ``[article_ids, question_ids, encoding]``."""
        article, question, encoding = inputs
        same = ops.equal(ops.expand_dims(article, 2), ops.expand_dims(question, 1))
        real = ops.expand_dims(ops.not_equal(question, PAD_ID), 1)
        match = ops.cast(ops.logical_and(same, real), "float32")  # [batch, length, q]
        rows = ops.minimum(ops.arange(ops.shape(question)[1]), self.question_slots - 1)
        match = ops.einsum("blq,qk->blk", match, ops.one_hot(rows, self.question_slots))
        return ops.concatenate([match * encoding[..., :1], match * encoding[..., -1:]], axis=-1)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "question_slots": self.question_slots}


@keras.saving.register_keras_serializable(package="multihead_qa")
class AnswerParts(keras.layers.Layer):  # type: ignore[misc]
    """Shared logits for the words of multi-word answer labels (``"s,e"``, ``"apple,milk"``).

    Each label is split at ``separator`` into words; every (number of words, position, word)
    gets one logit from the input ``[batch, dim]``, and a label's output logit is the sum of
    its words' logits: float32 ``[batch, len(labels)]``, added to the per-label logits
    before the softmax. So "s" as the first of two words is learned from every such label
    (bAbI path finding: 12 direction pairs of ~80 examples each share 4 + 4 word logits)
    instead of once per pair. A one-word label gets a logit of its own (no sharing).
    """

    def __init__(self, labels: Sequence[str], separator: str = ",", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = list(labels)
        self.separator = separator
        words = [label.split(separator) for label in self.labels]
        parts = sorted({(len(row), at, word) for row in words for at, word in enumerate(row)})
        index = {part: column for column, part in enumerate(parts)}
        self.matrix = np.zeros((len(self.labels), len(parts)), np.float32)
        for label, row in enumerate(words):
            for at, word in enumerate(row):
                self.matrix[label, index[(len(row), at, word)]] = 1.0

    def build(self, input_shape: Any) -> None:
        """Create the ``[dim, parts]`` kernel and ``[parts]`` bias."""
        parts = self.matrix.shape[1]
        self.kernel = self.add_weight(shape=(input_shape[-1], parts), initializer="glorot_uniform")
        self.bias = self.add_weight(shape=(parts,), initializer="zeros")

    def call(self, hidden: Any) -> Any:
        """Per-label sums of the word logits of ``hidden`` ``[batch, dim]``."""
        part_logits = ops.matmul(hidden, self.kernel) + self.bias
        return ops.matmul(part_logits, ops.convert_to_tensor(self.matrix.T))

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, for saving."""
        return {**super().get_config(), "labels": self.labels, "separator": self.separator}
