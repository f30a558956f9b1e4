"""Keras models for ``qa``: a classic two-LSTM baseline and an end-to-end memory network.

Both take ``article_ids`` and ``question_ids`` (int32 ``[batch, length]``, padded with 0) and
return ``answer_probs``, a softmax over the answer vocabulary. The memory network also returns
``sentence_weights`` (float32 ``[batch, max_sentences]``, slot 0 = the story's last sentence,
absent slots 0): its attention over the sentences, trained against the supporting facts with
loss weight ``evidence_loss_weight``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
from keras import ops

from training.models.qa_layers import (
    AnswerParts,
    HopAttention,
    MatchRoles,
    QuestionMatch,
    SentenceBags,
    SentenceSlots,
    SlotBias,
)

ARCHITECTURES = ("memnet", "classic")
# The memory network's second head: its attention over the story's sentences, [batch, slots],
# slot 0 = the last sentence (serving.spec.SegmentRule, order "last_first").
EVIDENCE_OUTPUT = "sentence_weights"
HOP_OUTPUT_PREFIX = "hop_weights_"  # hop_weights_0, ...: with hop_supervision, training only


def build_qa_model(
    hparams: Mapping[str, Any],
    vocab_size: int,
    answers: int,
    period_id: int,
    answer_labels: Sequence[str] = (),
) -> keras.Model:
    """The architecture named by ``hparams["arch"]``, compiled.

    ``answer_labels`` (``answers`` of them) are needed by the memnet's ``answer_parts``
    (ValueError without them).
    """
    arch = hparams.get("arch", "memnet")
    if arch == "memnet":
        model = memory_network(hparams, vocab_size, answers, period_id, answer_labels)
    elif arch == "classic":
        model = classic_model(hparams, vocab_size, answers)
    else:
        raise ValueError(f"unknown qa architecture {arch!r}; choose from {ARCHITECTURES}")
    optimizer = keras.optimizers.Adam(
        learning_rate=float(hparams["learning_rate"]), clipnorm=float(hparams.get("clipnorm", 40))
    )
    losses: dict[str, Any] = {"answer_probs": "sparse_categorical_crossentropy"}
    loss_weights = {"answer_probs": 1.0}
    if EVIDENCE_OUTPUT in model.output_names:
        losses[EVIDENCE_OUTPUT] = evidence_loss
        loss_weights[EVIDENCE_OUTPUT] = float(hparams.get("evidence_loss_weight", 0.0))
    for name in model.output_names:
        if name.startswith(HOP_OUTPUT_PREFIX):  # training-only outputs: one hop's attention
            losses[name] = evidence_loss
            loss_weights[name] = float(hparams.get("hop_loss_weight", 0.0))
    model.compile(
        optimizer=optimizer,
        loss=losses,
        loss_weights=loss_weights,
        metrics={"answer_probs": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
    )
    return model


def evidence_loss(target: Any, weights: Any) -> Any:
    """Cross-entropy of the sentence weights against the supporting facts' distribution.

    ``target`` and ``weights`` are ``[batch, max_sentences]``; a target row of zeros (no
    supporting fact among the kept sentences) gives loss 0. Weights are clipped away from 0
    so an absent slot (weight exactly 0) with target 0 contributes 0, not NaN.
    """
    clipped = ops.clip(weights, keras.config.epsilon(), 1.0)
    return -ops.sum(ops.cast(target, weights.dtype) * ops.log(clipped), axis=-1)


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
    hparams: Mapping[str, Any],
    vocab_size: int,
    answers: int,
    period_id: int,
    answer_labels: Sequence[str] = (),
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
    match = roles = None
    if hparams.get("question_match"):
        slots = int(hparams["question_max_tokens"])
        match = QuestionMatch(slots, dim, name="question_match")([article, question])
    bind_width = _width(hparams, "match_hidden")
    if bind_width:
        roles = MatchRoles(int(hparams["question_max_tokens"]), name="match_roles")(
            [article, question, encoding]
        )
        roles = SentenceBags(sentences, name="match_role_bags")([slot_ids, roles])
    attentions, states = [], []
    for hop in range(hops):
        keys, values = (
            _memories(slot_ids, encoding, _words(embeddings[hop + k], article, match), hparams, n)
            for k, n in ((0, f"keys_{hop}"), (1, f"values_{hop}"))
        )
        if int(hparams.get("memory_hidden", 0)):
            # A per-sentence nonlinearity binds a sentence's words before the attention sums
            # sentences ("north" with "the place asked from is the subject"); residual.
            hidden = keras.layers.Dense(
                int(hparams["memory_hidden"]), activation="relu", name=f"values_{hop}_hidden"
            )(values)
            values = values + keras.layers.Dense(dim, name=f"values_{hop}_out")(hidden)
        if roles is not None:
            values = _bind_roles(values, roles, bind_width, f"values_{hop}")
        gated = bool(hparams.get("gated_hops", False))
        state, attention = HopAttention(gated, name=f"hop_{hop}")([keys, values, state, present])
        attentions.append(attention)
        states.append(state)
    if hparams.get("answer_from_all_hops") and hops > 1:
        # Every hop's state, in hop order: with hop_supervision each holds one fact, so the
        # answer layer sees which fact came first (a path's steps, qa19).
        state = keras.layers.Concatenate(name="hop_states")(states)
    if int(hparams.get("answer_hidden", 0)):
        state = keras.layers.Dense(int(hparams["answer_hidden"]), activation="relu")(state)
    state = keras.layers.Dropout(float(hparams.get("dropout", 0.0)))(state)
    probs = _answer_probs(state, answers, answer_labels if hparams.get("answer_parts") else None)
    # The evidence: the hops' attention averaged (each hop may read a different fact).
    evidence = (
        keras.layers.Average(name=EVIDENCE_OUTPUT)(attentions)
        if len(attentions) > 1
        else keras.layers.Identity(name=EVIDENCE_OUTPUT)(attentions[0])
    )
    outputs = {"answer_probs": probs, EVIDENCE_OUTPUT: evidence}
    if hparams.get("hop_supervision"):
        # Each hop's own attention, supervised with "its" supporting fact (strongly supervised
        # memory networks); not served (the spec names only answer_probs and sentence_weights).
        for hop, attention in enumerate(attentions):
            name = f"{HOP_OUTPUT_PREFIX}{hop}"
            outputs[name] = keras.layers.Identity(name=name)(attention)
    return keras.Model({"article_ids": article, "question_ids": question}, outputs, name="qa")


def _answer_probs(
    state: keras.KerasTensor, answers: int, labels: Sequence[str] | None
) -> keras.KerasTensor:
    """Softmax over the answers; with ``labels``, plus the shared word logits of AnswerParts."""
    if labels is None:
        return keras.layers.Dense(answers, activation="softmax", name="answer_probs")(state)
    if len(labels) != answers:
        raise ValueError(f"answer_parts needs the {answers} answer labels, got {len(labels)}")
    logits = keras.layers.Dense(answers, name="answer_logits")(state)
    logits = logits + AnswerParts(labels, name="answer_parts")(state)
    return keras.layers.Activation("softmax", name="answer_probs")(logits)


def _width(hparams: Mapping[str, Any], key: str) -> int:
    """``hparams[key]`` as a layer width: an integer >= 0, 0 (or absent) for no layer."""
    value = hparams.get(key, 0) or 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be an integer >= 0 (0: no layer), got {value!r}")
    return value


def _bind_roles(
    memories: keras.KerasTensor, roles: keras.KerasTensor, width: int, name: str
) -> keras.KerasTensor:
    """Memories ``[batch, slots, dim]`` plus a per-sentence dense ReLU layer of ``width`` on
    [memory, the question words' roles in the sentence] (``MatchRoles`` bags, ``[batch,
    slots, 2 * question_slots]``), residual.

    A sum of position-weighted word vectors carries "north" and "the place asked from is the
    subject" side by side; bAbI path finding needs their product (the way from the subject
    is the opposite of the word, from the object the word itself), which one hidden ReLU
    layer per sentence can form before the attention mixes sentences.
    """
    joined = keras.layers.Concatenate(name=f"{name}_roles")([memories, roles])
    hidden = keras.layers.Dense(width, activation="relu", name=f"{name}_bind")(joined)
    return memories + keras.layers.Dense(int(memories.shape[-1]), name=f"{name}_bind_out")(hidden)


def _words(
    embedding: keras.layers.Embedding, ids: keras.KerasTensor, match: keras.KerasTensor | None
) -> keras.KerasTensor:
    vectors = embedding(ids)
    return vectors if match is None else vectors + match


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
