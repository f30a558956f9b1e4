"""The qa memnet's question-word roles (MatchRoles) and their per-sentence layer (match_hidden)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.support.qa_export import export_qa
from training.models.qa import EVIDENCE_OUTPUT, build_qa_model
from training.models.qa_layers import MatchRoles, SentenceBags, SentenceSlots
from training.tasks.base import RunSettings
from training.tasks.qa import QaTask
from training.tasks.qa_presets import PRESETS

PERIOD = 9
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "babi"
TINY = PRESETS["tiny"]


def _role_bags(article, question, slots=4, dim=4):
    ids = np.array(article, np.int32)
    slot_ids, encoding, _ = SentenceSlots(1, PERIOD, dim)(ids)
    roles = MatchRoles(slots)([ids, np.array(question, np.int32), encoding])
    return np.asarray(SentenceBags(1)([slot_ids, roles]))[0, 0]


def test_roles_give_start_and_end_weights_of_the_question_words_in_the_sentence():
    # "1 north 2 ." against "from 1 to 2": word 1 is the subject (position 1 of 3), word 2
    # the object (3 of 3). Start weight = encoding[..., 0] = (1 - r) - (1/4)(1 - 2r), end
    # weight = r, for r = position / length (dim 4).
    bags = _role_bags([[1, 3, 2, PERIOD]], [[7, 1, 8, 2]])
    start = [0.0, 0.75 - 0.5 / 3, 0.0, 0.25]
    end = [0.0, 1 / 3, 0.0, 1.0]
    np.testing.assert_allclose(bags, start + end, rtol=1e-6, atol=1e-7)


def test_roles_tell_a_sentence_from_its_reversal_and_padding_never_matches():
    question = [[7, 1, 8, 2, 0, 0]]  # padding after the question
    forward = _role_bags([[1, 3, 2, PERIOD, 0, 0]], question)
    reverse = _role_bags([[2, 3, 1, PERIOD, 0, 0]], question)
    # The subject of one is the object of the other: column pairs 1 and 3 swap.
    np.testing.assert_allclose(forward[[1, 3, 5, 7]], reverse[[3, 1, 7, 5]], rtol=1e-6)
    assert np.abs(forward - reverse).max() > 0.1
    assert not forward[[0, 2, 4, 6]].any()  # 7, 8 and padding match no article word


def test_question_positions_beyond_the_slots_share_the_last_pair():
    bags = _role_bags([[5, 6, PERIOD]], [[1, 5, 2, 6]], slots=2)  # 6 at question position 3
    assert bags.shape == (4,)
    # 5 at 1 of 2 (start 0.5, end 0.5), 6 at 2 of 2 (start 0.25, end 1), both in pair 1.
    np.testing.assert_allclose(bags, [0, 0.75, 0, 1.5], rtol=1e-6)


def test_roles_round_trip_through_their_config():
    again = MatchRoles.from_config(MatchRoles(5, name="roles").get_config())
    assert again.question_slots == 5 and again.name == "roles"


def test_match_hidden_adds_a_layer_per_hop_and_keeps_the_outputs():
    plain = build_qa_model({**TINY, "match_hidden": 0}, vocab_size=20, answers=5, period_id=PERIOD)
    model = build_qa_model({**TINY, "match_hidden": 8}, vocab_size=20, answers=5, period_id=PERIOD)
    # Two Dense layers (kernel + bias each) per hop on the values.
    assert len(model.trainable_weights) == len(plain.trainable_weights) + 4 * TINY["hops"]
    assert model.get_layer("values_0_bind").kernel.shape == (16 + 2 * 16, 8)
    assert set(model.output_names) == set(plain.output_names)


def test_match_hidden_answers_do_not_move_with_right_padding():
    model = build_qa_model({**TINY, "match_hidden": 8}, 20, 5, PERIOD)
    article = np.array([[3, 4, PERIOD, 5, 3, PERIOD]], np.int32)
    question = np.array([[7, 3, 5]], np.int32)
    plain = model.predict({"article_ids": article, "question_ids": question}, verbose=0)
    padded = model.predict(
        {
            "article_ids": np.pad(article, [[0, 0], [0, 7]]),
            "question_ids": np.pad(question, [[0, 0], [0, 4]]),
        },
        verbose=0,
    )
    for name in ("answer_probs", EVIDENCE_OUTPUT):
        np.testing.assert_allclose(plain[name], padded[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value", [-1, 2.5, True, "8"])
def test_match_hidden_must_be_a_width(value):
    with pytest.raises(ValueError, match="match_hidden must be an integer >= 0"):
        build_qa_model({**TINY, "match_hidden": value}, 20, 5, PERIOD)


def test_tiny_fit_on_the_fixtures_learns_and_exports_the_two_input_contract(tmp_path):
    # The path-finding fixture (answers "e,n", "s,w", "n") and qa1's: a memnet with the role
    # layer fits them and is served with the same two inputs and two outputs as before.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in ("qa19_path-finding_train.txt", "qa1_single-supporting-fact_train.txt"):
        shutil.copy(FIXTURES / name, data_dir)
    settings = RunSettings(data_dir=data_dir, model_repo=tmp_path / "repo", run_dir=tmp_path / "r")
    task = QaTask()
    hparams = {**TINY, "match_hidden": 16, "hop_order": "cycle", "validation_fraction": 0.0}
    data = task.prepare(settings, hparams)
    model = task.build_model(hparams, data)
    history = model.fit(data.train_inputs, data.train_targets, epochs=40, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    _, signature = export_qa(model, data, settings.model_repo)
    served = signature(
        article_ids=tf.constant(data.train_inputs["article_ids"]),
        question_ids=tf.constant(data.train_inputs["question_ids"]),
    )
    keras_probs = model.predict(data.train_inputs, verbose=0)["answer_probs"]
    np.testing.assert_allclose(served["answer_probs"].numpy(), keras_probs, rtol=1e-4, atol=1e-5)
