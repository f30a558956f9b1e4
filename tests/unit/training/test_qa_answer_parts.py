"""The qa memnet's shared word logits for multi-word answers (AnswerParts, ``answer_parts``)."""

import numpy as np
import pytest

from training.models.qa import build_qa_model
from training.models.qa_layers import AnswerParts
from training.tasks.qa_presets import PRESETS

PERIOD = 9
LABELS = ["kitchen", "n,e", "s,e", "s,w", "football,apple"]


def test_each_label_sums_the_logits_of_its_words_by_count_and_position():
    layer = AnswerParts(LABELS)
    layer.build((None, 2))
    # Parts, sorted: (1,0,kitchen) (2,0,football) (2,0,n) (2,0,s) (2,1,apple) (2,1,e) (2,1,w)
    layer.kernel.assign(np.array([[1, 10, 100, 1000, 10**4, 10**5, 10**6], [0] * 7], np.float32))
    logits = np.asarray(layer(np.array([[1.0, 5.0]], np.float32)))
    np.testing.assert_allclose(
        logits[0], [1, 100 + 10**5, 1000 + 10**5, 1000 + 10**6, 10 + 10**4], rtol=1e-6
    )


def test_a_one_word_answer_shares_no_logit_with_a_list_starting_with_it():
    layer = AnswerParts(["football", "football,apple", "apple"])
    shared = layer.matrix[0] @ layer.matrix[1]
    assert shared == 0
    assert layer.matrix.sum(axis=1).tolist() == [1, 2, 1]


def test_memnet_with_answer_parts_adds_weights_and_still_gives_probabilities():
    hparams = {**PRESETS["tiny"], "answer_parts": False}
    plain = build_qa_model(hparams, vocab_size=20, answers=5, period_id=PERIOD)
    model = build_qa_model(
        {**hparams, "answer_parts": True}, 20, 5, period_id=PERIOD, answer_labels=LABELS
    )
    assert len(model.trainable_weights) == len(plain.trainable_weights) + 2
    article = np.array([[3, 4, PERIOD, 4, 3, PERIOD]], np.int32)
    outputs = model.predict({"article_ids": article, "question_ids": article[:, :2]}, verbose=0)
    assert outputs["answer_probs"].shape == (1, 5)
    np.testing.assert_allclose(outputs["answer_probs"].sum(), 1.0, rtol=1e-5)


def test_answer_parts_needs_the_labels():
    with pytest.raises(ValueError, match="answer labels"):
        build_qa_model({**PRESETS["tiny"], "answer_parts": True}, 20, 5, period_id=PERIOD)


def test_answer_parts_round_trips_through_its_config():
    layer = AnswerParts(LABELS, name="parts")
    again = AnswerParts.from_config(layer.get_config())
    np.testing.assert_array_equal(again.matrix, layer.matrix)
