"""The qa memory network's sentence handling, both architectures, batching and the registry."""

from pathlib import Path

import numpy as np
import pytest

from training.batching import LengthBuckets, trim_padding
from training.data.babi import read_babi
from training.models.qa import build_qa_model
from training.models.qa_layers import SentenceBags, SentenceSlots
from training.tasks.base import RunSettings
from training.tasks.qa import QaTask
from training.tasks.qa_presets import PRESETS
from training.tasks.registry import get_task

PERIOD = 9


def test_sentence_slots_count_from_the_end_and_drop_old_sentences():
    # "a b . c . d e f" then padding: three sentences, the last one without a period
    ids = np.array([[1, 2, PERIOD, 3, PERIOD, 4, 5, 6, 0, 0]] * 2, np.int32)
    slot_ids, encoding, present = SentenceSlots(max_sentences=2, period_id=PERIOD, dim=4)(ids)
    outside = 2 * 2
    np.testing.assert_array_equal(
        np.asarray(slot_ids),
        [
            [outside, outside, outside, 1, outside, 0, 0, 0, outside, outside],
            [outside, outside, outside, 3, outside, 2, 2, 2, outside, outside],
        ],
    )
    np.testing.assert_array_equal(np.asarray(present), [[1, 1], [1, 1]])
    encoding = np.asarray(encoding)[0]
    # position encoding of word j of a J-word sentence: (1 - j/J) - (k/d)(1 - 2j/J)
    steps = np.arange(1, 5) / 4
    for column, (j, length) in {5: (1, 3), 6: (2, 3), 7: (3, 3), 3: (1, 1)}.items():
        expected = (1 - j / length) - steps * (1 - 2 * j / length)
        np.testing.assert_allclose(encoding[column], expected, rtol=1e-6, atol=1e-7)
    assert not encoding[[0, 1, 2, 4, 8, 9]].any()  # dropped, periods and padding


def test_sentence_bags_sum_word_vectors_per_slot():
    ids = np.array([[1, 2, PERIOD, 3, 0], [4, PERIOD, 0, 0, 0]], np.int32)
    slot_ids, _, present = SentenceSlots(max_sentences=3, period_id=PERIOD, dim=2)(ids)
    vectors = np.arange(20, dtype=np.float32).reshape(2, 5, 2)
    bags = np.asarray(SentenceBags(3)([slot_ids, vectors]))
    np.testing.assert_allclose(bags[0], [[6, 7], [2, 4], [0, 0]])  # "3"; "1 2"; empty
    np.testing.assert_allclose(bags[1], [[10, 11], [0, 0], [0, 0]])
    np.testing.assert_array_equal(np.asarray(present), [[1, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize(
    "overrides",
    [
        {"arch": "memnet"},
        {"arch": "memnet", "gated_hops": True},
        {"arch": "memnet", "hop_supervision": True, "answer_from_all_hops": True},
        {"arch": "classic"},
    ],
)
def test_both_architectures_accept_any_length_and_give_probabilities(overrides):
    hparams = {**PRESETS["tiny"], **overrides}
    model = build_qa_model(hparams, vocab_size=20, answers=5, period_id=PERIOD)
    for length in (1, 7, 130):
        article = np.random.default_rng(0).integers(1, 20, (3, length)).astype(np.int32)
        question = np.array([[1, 2, 3]] * 3, np.int32)
        probs = model.predict({"article_ids": article, "question_ids": question}, verbose=0)
        np.testing.assert_allclose(probs["answer_probs"].sum(axis=1), 1.0, rtol=1e-5)
        assert probs["answer_probs"].shape == (3, 5)


def test_classic_embedding_has_vocabulary_rows_and_width_columns():
    hparams = {**PRESETS["tiny"], "arch": "classic", "embedding_dim": 6}
    model = build_qa_model(hparams, vocab_size=30, answers=4, period_id=PERIOD)
    assert model.get_layer("article_embedding").embeddings.shape == (30, 6)


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="unknown qa architecture"):
        build_qa_model({**PRESETS["tiny"], "arch": "nope"}, 10, 2, PERIOD)


def test_length_buckets_trim_padding_and_cover_every_example_once():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 30, 50)
    ids = np.zeros((50, 30), np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = row + 1  # the row's id identifies it
    buckets = LengthBuckets(
        {"article_ids": ids}, {"answer_probs": np.arange(50)}, None, 8, shuffle=True, seed=0
    )
    seen = []
    for index in range(len(buckets)):
        inputs, targets = buckets[index]
        batch = inputs["article_ids"]
        assert batch.shape[1] == lengths[targets["answer_probs"]].max()
        np.testing.assert_array_equal(batch[:, 0], targets["answer_probs"] + 1)
        seen += targets["answer_probs"].tolist()
    assert sorted(seen) == list(range(50))
    buckets.on_epoch_end()
    assert len(buckets) == 7


def test_trim_padding_keeps_one_column_of_an_all_padding_batch():
    assert trim_padding(np.zeros((2, 5), np.int32)).shape == (2, 1)


def test_registry_returns_tasks_and_refuses_unknown_names():
    assert isinstance(get_task("qa"), QaTask)
    with pytest.raises(KeyError, match="unknown task"):
        get_task("translation")


def test_length_bucket_dataset_allows_any_length_in_any_batch():
    ids = np.zeros((40, 30), np.int32)
    for row in range(40):
        ids[row, : 1 + row % 30] = 5  # the first batches are short, later ones long
    buckets = LengthBuckets(
        {"article_ids": ids, "question_ids": ids[:, :3]},
        {"answer_probs": np.arange(40) % 5},
        None,
        4,
        shuffle=True,
        seed=2,
    )
    dataset = buckets.as_dataset()
    for _ in range(2):  # two epochs
        widths = {int(inputs["article_ids"].shape[1]) for inputs, _ in dataset}
        assert len(widths) > 3
        assert sum(1 for _ in dataset) == 10


@pytest.mark.parametrize("arch", ["memnet", "classic"])
def test_right_padding_does_not_change_answers(arch):
    # The model server pads merged batches with 0 on the right; answers must not move.
    model = build_qa_model({**PRESETS["tiny"], "arch": arch}, 20, 5, PERIOD)
    article = np.array([[3, 4, PERIOD, 5, 6, PERIOD]], np.int32)
    question = np.array([[7, 8]], np.int32)
    plain = model.predict({"article_ids": article, "question_ids": question}, verbose=0)
    padded = model.predict(
        {
            "article_ids": np.pad(article, [[0, 0], [0, 9]]),
            "question_ids": np.pad(question, [[0, 0], [0, 3]]),
        },
        verbose=0,
    )
    np.testing.assert_allclose(plain["answer_probs"], padded["answer_probs"], rtol=1e-5, atol=1e-6)


def test_task_repeats_oversample_the_training_split_only(tmp_path):
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "babi"
    task = QaTask()
    hparams = {**PRESETS["tiny"], "validation_fraction": 0.0}
    arrays = {}
    for repeats in ({}, {"qa19": 3}):
        settings = RunSettings(
            data_dir=fixtures, model_repo=tmp_path / "repo", run_dir=tmp_path / str(len(repeats))
        )
        data = task.prepare(settings, {**hparams, "task_repeats": repeats})
        arrays[len(repeats)] = data
    plain, repeated = arrays[0], arrays[1]
    qa19 = sum(example.task == 19 for example in read_babi(fixtures).examples)
    extra = len(repeated.train_targets["answer_probs"]) - len(plain.train_targets["answer_probs"])
    assert extra == 2 * qa19
    for name, values in plain.train_targets.items():
        assert len(repeated.train_targets[name]) == len(values) + extra
    assert repeated.data_summary["train_examples"] == plain.data_summary["train_examples"]
    assert (
        repeated.data_summary["train_examples_fitted"]
        == plain.data_summary["train_examples"] + extra
    )
    assert (tmp_path / "1" / "tokenizer.json").read_bytes() == (
        tmp_path / "0" / "tokenizer.json"
    ).read_bytes()
