"""The qa memnet's exact-match features (QuestionMatch) and per-sentence value layer."""

import numpy as np
import pytest

from training.models.qa import build_qa_model
from training.models.qa_layers import QuestionMatch, SentenceBags, SentenceSlots
from training.tasks.qa_presets import PRESETS

PERIOD = 9


def _layer(slots: int, dim: int) -> QuestionMatch:
    layer = QuestionMatch(slots, dim)
    layer.build(None)
    # Row k = (k + 1) * [1, 10]: each question position is recognisable in the output.
    layer.table.assign(np.outer(np.arange(1, slots + 1), [1.0, 10.0]).astype(np.float32))
    return layer


def test_each_article_word_gets_the_vectors_of_the_question_positions_it_matches():
    article = np.array([[5, 6, 7, PERIOD, 7, 0]], np.int32)
    question = np.array([[7, 5, 7, 0]], np.int32)  # 7 at positions 0 and 2, 5 at 1, padding
    match = np.asarray(_layer(4, 2)([article, question]))
    np.testing.assert_allclose(
        match[0],
        [[2, 20], [0, 0], [4, 40], [0, 0], [4, 40], [0, 0]],  # 5 -> row 1; 7 -> rows 0 + 2
    )


def test_padding_never_matches_padding_and_long_questions_share_the_last_row():
    article = np.array([[0, 0, 8]], np.int32)
    question = np.array([[0, 1, 2, 8]], np.int32)  # 8 at position 3, beyond 2 slots
    match = np.asarray(_layer(2, 2)([article, question]))
    np.testing.assert_allclose(match[0], [[0, 0], [0, 0], [2, 20]])


def test_match_features_tell_a_sentence_from_its_reversal():
    # "1 north 2 ." vs "2 north 1 .": the same bag of words, the question names 1 first; the
    # position-encoded bags differ by the match features alone (embeddings all zero).
    question = np.array([[7, 1, 8, 2]], np.int32)
    bags = []
    for article in ([[1, 3, 2, PERIOD]], [[2, 3, 1, PERIOD]]):
        ids = np.array(article, np.int32)
        slot_ids, encoding, _ = SentenceSlots(1, PERIOD, 2)(ids)
        match = _layer(4, 2)([ids, question])
        bags.append(np.asarray(SentenceBags(1)([slot_ids, encoding * match])))
    assert np.abs(bags[0] - bags[1]).max() > 0.1


@pytest.mark.parametrize("overrides", [{"question_match": True}, {"memory_hidden": 8}])
def test_memnet_with_match_or_value_layer_changes_with_the_option(overrides):
    hparams = {**PRESETS["tiny"], "question_match": False, "memory_hidden": 0}
    plain = build_qa_model(hparams, vocab_size=20, answers=5, period_id=PERIOD)
    model = build_qa_model({**hparams, **overrides}, vocab_size=20, answers=5, period_id=PERIOD)
    assert len(model.trainable_weights) > len(plain.trainable_weights)
    article = np.array([[3, 4, PERIOD, 4, 3, PERIOD]], np.int32)
    outputs = model.predict({"article_ids": article, "question_ids": article[:, :2]}, verbose=0)
    np.testing.assert_allclose(outputs["answer_probs"].sum(), 1.0, rtol=1e-5)
    assert outputs["sentence_weights"].shape == (1, PRESETS["tiny"]["max_sentences"])
