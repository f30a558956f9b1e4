"""The profile task: targets and the masked income loss, tiny models, one tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from serving.encoding import encode_instances
from serving.spec import SPEC_FILE, BinaryHead, CategoricalHead, TextsInput, load_spec
from serving.tokenization import load_tokenizer
from training.data.blogs import Blogger, load_income_groups, read_blogs, split_bloggers
from training.models.profile import build_profile_model
from training.models.profile_heads import AGE_BAND_LABELS, compile_profile_model
from training.tasks.profile import ProfileTask, blogger_text
from training.tasks.profile_targets import monitor_terms, profile_metrics, profile_targets
from training.tokenization import train_tokenizer

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "blogs"


def _tiny_hparams(arch="bag", **changes):
    return {**ProfileTask().hparams("tiny"), "arch": arch, **changes}


def test_targets_mask_income_of_bloggers_without_industry():
    bloggers = read_blogs(FIXTURE_DIR).bloggers
    targets, weights = profile_targets(bloggers, load_income_groups())
    for blogger, weight in zip(bloggers, weights["income_probs"], strict=True):
        if blogger.industry in {"Student", "indUnk"} and blogger.income_group is None:
            assert weight == 0.0
        else:
            assert weight == 1.0
    overridden = [b.income_group for b in bloggers].index(2)
    assert targets["income_probs"][overridden] == 2  # Engineering would be 8
    assert targets["age"].shape == (12, 1) and targets["gender_prob"].shape == (12, 1)
    assert set(targets["gender_prob"].reshape(-1)) == {0.0, 1.0}
    assert np.all(weights["age"] == 1.0) and np.all(weights["gender_prob"] == 1.0)


@pytest.mark.parametrize("arch", ["tfidf", "bag", "classic"])
def test_tiny_model_predicts_the_three_heads(arch):
    model = compile_profile_model(
        build_profile_model(_tiny_hparams(arch), 50, 25.0), _tiny_hparams()
    )
    ids = np.random.default_rng(0).integers(1, 50, size=(3, 40)).astype(np.int32)
    ids[0, 20:] = contract.PAD_ID
    outputs = model.predict({"post_ids": ids}, verbose=0)
    assert outputs["age"].shape == (3, 1)
    assert outputs["income_probs"].shape == (3, contract.INCOME_GROUPS)
    np.testing.assert_allclose(outputs["income_probs"].sum(axis=1), 1.0, rtol=1e-5)
    assert outputs["gender_prob"].shape == (3, 1)
    assert np.all((outputs["gender_prob"] >= 0) & (outputs["gender_prob"] <= 1))
    np.testing.assert_allclose(outputs["age"], 25.0, atol=5.0)  # the bias starts at the mean


def _stepper():
    """One compiled tiny model that can replay a training step from the same start."""
    keras.utils.set_random_seed(3)
    hparams = {**_tiny_hparams(), "dropout": 0.0}  # no random masks: steps are replayable
    model = compile_profile_model(build_profile_model(hparams, 30, 25.0), hparams)
    model.optimizer.build(model.trainable_variables)
    start = model.get_weights()
    optimizer_start = [variable.numpy() for variable in model.optimizer.variables]
    ids = np.random.default_rng(1).integers(1, 30, size=(6, 12)).astype(np.int32)

    def step(income_labels, weights):
        model.set_weights(start)
        for variable, value in zip(model.optimizer.variables, optimizer_start, strict=True):
            variable.assign(value)
        targets = {
            "age": np.full((6, 1), 30.0, np.float32),
            "income_probs": income_labels,
            "gender_prob": np.array([[0], [1], [0], [1], [0], [1]], np.float32),
            "age_band_probs": np.full(6, 2, np.int32),
        }
        losses = model.evaluate(
            {"post_ids": ids}, targets, sample_weight=weights, return_dict=True, verbose=0
        )
        model.train_on_batch({"post_ids": ids}, targets, sample_weight=weights)
        return losses["income_probs_loss"], [w.numpy().copy() for w in model.trainable_weights]

    return step


def test_masked_income_rows_do_not_change_the_income_loss_or_the_update():
    step = _stepper()
    ones = np.ones(6, np.float32)
    mask = np.array([1, 1, 0, 0, 1, 0], np.float32)
    weights = {"age": ones, "income_probs": mask, "gender_prob": ones, "age_band_probs": ones}
    labels = np.array([3, 7, 0, 0, 9, 0], np.int32)
    other = labels.copy()
    other[[2, 3, 5]] = [5, 9, 1]  # change only the masked rows' labels
    loss, after = step(labels, weights)
    other_loss, other_after = step(other, weights)
    assert loss == pytest.approx(other_loss, abs=1e-7)
    for first, second in zip(after, other_after, strict=True):
        np.testing.assert_array_equal(first, second)
    unmasked_loss, _ = step(other, {**weights, "income_probs": ones})
    assert unmasked_loss != pytest.approx(loss, abs=1e-4)  # the labels would matter unmasked
    replay_loss, replay_after = step(labels, weights)  # the replay really starts afresh
    assert replay_loss == pytest.approx(loss, abs=1e-7)
    for first, second in zip(after, replay_after, strict=True):
        np.testing.assert_array_equal(first, second)


def test_tiny_run_exports_the_contract(profile_tiny_run):
    # The session's tiny run (tests/conftest.py), served by test_profile_band_served too.
    version, task = profile_tiny_run.version, profile_tiny_run.task
    settings = profile_tiny_run.settings
    assets = version / contract.ASSETS_DIR
    spec = load_spec(assets / SPEC_FILE)
    assert spec == task.data.spec
    posts = spec.input("posts")
    assert isinstance(posts, TextsInput) and posts.separator == "[SEP]"
    assert posts.tensor == "post_ids"
    age, income, gender, band = spec.heads
    assert (age.field, age.output) == ("age", "age")
    assert isinstance(band, CategoricalHead) and (band.field, band.output) == (
        "age_band",
        "age_band_probs",
    )
    assert band.labels == list(AGE_BAND_LABELS)
    income_groups = load_income_groups()
    assert isinstance(income, CategoricalHead) and income.field == "income_group"
    assert income.labels == [group["label"] for group in income_groups.groups]
    assert income.label_descriptions == [group["rule"] for group in income_groups.groups]
    assert income.note == income_groups.note
    assert isinstance(gender, BinaryHead) and gender.labels == ("female", "male")
    card = json.loads((assets / contract.MODEL_CARD_FILE).read_text())
    assert card["data"]["income_is_proxy"] is True and card["data"]["bad_lines"] == 3
    assert {
        "gender_accuracy",
        "age_mae",
        "age_band_accuracy",
        "age_band_from_age_accuracy",
        "income_accuracy_labelled",
    } <= set(card["validation_metrics"])
    # The gateway's path: full texts -> exported tokenizer -> the ids the model was trained on.
    hparams = task.hparams("tiny")
    _, validation = split_bloggers(
        read_blogs(FIXTURE_DIR).bloggers, hparams["validation_fraction"], settings.seed
    )
    tokenizer = load_tokenizer(assets / contract.TOKENIZER_FILE)
    instances = [{"posts": list(b.posts)} for b in validation]
    served_ids = encode_instances(spec, {contract.TOKENIZER_FILE: tokenizer}, instances)["post_ids"]
    np.testing.assert_array_equal(served_ids, task.data.val_inputs["post_ids"])
    served = tf.saved_model.load(str(version)).signatures[contract.SIGNATURE_NAME]
    outputs = served(post_ids=tf.constant(served_ids[:2]))
    assert outputs["age"].shape == (2,) and outputs["gender_prob"].shape == (2,)
    assert outputs["income_probs"].shape == (2, contract.INCOME_GROUPS)
    assert outputs["age_band_probs"].shape == (2, len(AGE_BAND_LABELS))


def test_band_targets_are_the_band_of_each_age():
    bloggers = read_blogs(FIXTURE_DIR).bloggers
    targets, weights = profile_targets(bloggers, load_income_groups(), band_head=True)
    names = ("teen", "twenties", "thirties+")
    assert targets["age_band_probs"].dtype == np.int32
    assert [names[band] for band in targets["age_band_probs"]] == [b.age_band for b in bloggers]
    assert np.all(weights["age_band_probs"] == 1.0)
    plain, _ = profile_targets(bloggers, load_income_groups())
    assert "age_band_probs" not in plain


@pytest.mark.parametrize("arch", ["tfidf", "bag", "classic"])
def test_band_head_is_a_softmax_over_the_three_bands_and_trains(arch):
    hparams = _tiny_hparams(arch, age_band_head_weight=1.0)
    model = compile_profile_model(build_profile_model(hparams, 50, 25.0), hparams)
    ids = np.random.default_rng(0).integers(1, 50, size=(4, 40)).astype(np.int32)
    probs = model.predict({"post_ids": ids}, verbose=0)["age_band_probs"]
    assert probs.shape == (4, len(AGE_BAND_LABELS))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    targets = {
        "age": np.array([[15.0], [25.0], [35.0], [15.0]], np.float32),
        "income_probs": np.zeros(4, np.int32),
        "gender_prob": np.array([[0], [1], [0], [1]], np.float32),
        "age_band_probs": np.array([0, 1, 2, 0], np.int32),
    }
    logs = model.train_on_batch({"post_ids": ids}, targets, return_dict=True)
    assert "age_band_probs_accuracy" in logs  # the log name the combined monitor reads
    without = _tiny_hparams(arch, age_band_head_weight=0.0)
    assert "age_band_probs" not in build_profile_model(without, 50, 25.0).output_names


def test_served_band_accuracy_comes_from_the_band_head_when_there_is_one():
    targets = {
        "age": np.array([[15.0], [25.0], [35.0]], np.float32),
        "income_probs": np.zeros(3, np.int32),
        "gender_prob": np.array([[0.0], [1.0], [0.0]], np.float32),
    }
    predictions = {
        "age": np.array([[21.0], [25.0], [29.0]]),  # bands 1, 1, 1: one of three right
        "income_probs": np.full((3, 10), 0.1),
        "gender_prob": np.array([[0.2], [0.9], [0.4]]),
    }
    metrics = profile_metrics(predictions, targets, np.zeros(3, np.float32))
    assert metrics["age_band_accuracy"] == pytest.approx(1 / 3)
    assert metrics["age_band_from_age_accuracy"] == pytest.approx(1 / 3)
    head = np.eye(3)[[0, 1, 2]] * 0.8 + 0.2 / 3  # the band head gets all three right
    metrics = profile_metrics({**predictions, "age_band_probs": head}, targets, np.zeros(3))
    assert metrics["age_band_accuracy"] == pytest.approx(1.0)
    assert metrics["age_band_from_age_accuracy"] == pytest.approx(1 / 3)


def test_the_combined_monitor_can_watch_the_band_head():
    targets = {
        "gender_prob": np.array([[1], [0], [1], [0]], np.float32),
        "age": np.array([[15], [16], [25], [40]], np.float32),
    }
    terms = monitor_terms({"gender_prob_accuracy": 1.0, "age_band_probs_accuracy": 0.5}, targets)
    band = {term.log: term for term in terms}["age_band_probs_accuracy"]
    assert band.higher_is_better and band.baseline == pytest.approx(0.5)  # two of four <20


class _EmaCheck(keras.callbacks.Callback):  # type: ignore[misc]
    """Records, at each epoch's end (before fit's final EMA copy), weights == their EMA."""

    def __init__(self):
        super().__init__()
        self.equal = []

    def on_epoch_end(self, epoch, logs=None):
        averages = self.model.optimizer._model_variables_moving_average
        pairs = zip(self.model.trainable_variables, averages, strict=True)
        self.equal.append(all(np.allclose(v.numpy(), a.numpy()) for v, a in pairs))


def test_weight_ema_is_in_the_model_at_each_epoch_end():
    from training.models.profile_heads import profile_optimizer

    assert not profile_optimizer({"learning_rate": 0.01, "ema_momentum": 0.0}).use_ema
    keras.utils.set_random_seed(5)
    hparams = {**_tiny_hparams(), "dropout": 0.0, "ema_momentum": 0.9}
    model = compile_profile_model(build_profile_model(hparams, 30, 25.0), hparams, 3)
    rng = np.random.default_rng(2)
    targets = {
        "age": rng.uniform(15, 40, (12, 1)).astype(np.float32),
        "income_probs": rng.integers(0, contract.INCOME_GROUPS, (12, 1)),
        "gender_prob": rng.integers(0, 2, (12, 1)).astype(np.float32),
        "age_band_probs": rng.integers(0, len(AGE_BAND_LABELS), (12, 1)),
    }
    ids = {"post_ids": rng.integers(1, 30, size=(12, 10)).astype(np.int32)}
    check = _EmaCheck()
    model.fit(ids, targets, batch_size=4, epochs=2, verbose=0, callbacks=[check])  # 3 steps each
    assert check.equal == [True, True]
    # Without the per-epoch copy the raw weights are not their average at the epoch's end.
    keras.utils.set_random_seed(5)
    model = compile_profile_model(build_profile_model(hparams, 30, 25.0), hparams)
    check = _EmaCheck()
    model.fit(ids, targets, batch_size=4, epochs=1, verbose=0, callbacks=[check])
    assert check.equal == [False]


def test_gender_loss_weight_scales_only_the_gender_term():
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(4)
    ids = {"post_ids": rng.integers(1, 30, size=(8, 10)).astype(np.int32)}
    targets = {
        "age": rng.uniform(15, 40, (8, 1)).astype(np.float32),
        "income_probs": rng.integers(0, contract.INCOME_GROUPS, (8, 1)),
        "gender_prob": rng.integers(0, 2, (8, 1)).astype(np.float32),
        "age_band_probs": rng.integers(0, len(AGE_BAND_LABELS), (8, 1)),
    }
    hparams = _tiny_hparams()
    model = build_profile_model(hparams, 30, 25.0)
    results = []
    for weight in (1.0, 3.0):
        compile_profile_model(model, {**hparams, "gender_loss_weight": weight})
        results.append(model.evaluate(ids, targets, verbose=0, return_dict=True))
    gender = results[0]["gender_prob_loss"]
    assert gender > 0 and results[1]["gender_prob_loss"] == pytest.approx(gender)
    assert results[1]["loss"] - results[0]["loss"] == pytest.approx(2.0 * gender, rel=1e-4)


def test_a_post_spelling_the_separator_is_trained_on_as_the_gateway_reads_it() -> None:
    """The gateway reads a post's literal "[SEP]" as text (serving.literals.literal_posts);
    training's joined text was the raw join, where it was a second separator."""
    tokenizer = train_tokenizer(["mary went home sep pad"], vocab_size=100)
    blogger = Blogger("b", "male", 20, "Student", ("mary [SEP] went", "[PAD] home"))
    text = blogger_text(blogger, None, tokenizer)
    assert text == "mary [sep] went [SEP] [pad] home"
    assert blogger_text(blogger) == "mary [SEP] went [SEP] [PAD] home"  # the tokenizer's sample
