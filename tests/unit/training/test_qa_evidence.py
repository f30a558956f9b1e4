"""The qa evidence head: supporting-fact targets, sentence slots, loss weights, export."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from serving.encoding import segment_texts
from serving.spec import SPEC_FILE, SegmentRule, load_spec
from serving.tokenization import encode_texts, load_tokenizer
from training.data.babi import read_babi
from training.models.qa import EVIDENCE_OUTPUT, build_qa_model
from training.models.qa_layers import SentenceSlots
from training.tasks.base import RunSettings
from training.tasks.qa import QaTask, qa_spec
from training.tasks.qa_evidence import (
    evidence_targets,
    hop_fact,
    hop_targets,
    spec_evidence_head,
)
from training.tasks.qa_presets import PRESETS
from training.tokenization import train_tokenizer

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "babi"
TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def examples():
    return read_babi(FIXTURES).examples


@pytest.fixture(scope="module")
def tokenizer(examples):
    return train_tokenizer([e.article + " " + e.question for e in examples], vocab_size=200)


def _targets(tokenizer, examples, max_tokens=120, max_sentences=20):
    spec = qa_spec(["a", "b"], max_tokens, 16, tokenizer.get_vocab_size(), max_sentences)
    targets, weights = evidence_targets(tokenizer, examples, spec)
    return targets, weights, spec.input("article"), spec_evidence_head(spec).rule


def test_heaviest_target_slot_is_the_supporting_sentence(tokenizer, examples):
    qa1 = [example for example in examples if example.task == 1]
    targets, weights, article, rule = _targets(tokenizer, qa1)
    assert targets.shape == (len(qa1), 20)
    assert weights.tolist() == [1.0] * len(qa1)
    for example, target in zip(qa1, targets, strict=True):
        texts = segment_texts(tokenizer, example.article, article, rule)
        assert texts[int(np.argmax(target))] == example.statements[example.supporting[0]]
        assert target.sum() == pytest.approx(1.0)


def test_several_facts_share_the_target_and_no_fact_gives_weight_zero(tokenizer, examples):
    lists = [example for example in examples if example.task == 8]
    targets, weights, _, _ = _targets(tokenizer, lists)
    # "Mary got the football there." and "Mary picked up the apple there." of three statements
    np.testing.assert_allclose(targets[0][:3], [0.5, 0.5, 0.0])
    assert lists[3].answer == "nothing"
    assert not targets[3].any() and weights[3] == 0.0
    assert weights[0] == 1.0


def test_facts_outside_the_kept_sentences_are_dropped(tokenizer, examples):
    # qa19 story 1: "The office is east of the hallway. The kitchen is north of the office."
    question = next(example for example in examples if example.task == 19)
    assert question.supporting == (0, 1)
    full, _, _, _ = _targets(tokenizer, [question])
    np.testing.assert_allclose(full[0][:2], [0.5, 0.5])
    # Only the last sentence fits in 8 tokens (7 words and a period): one fact is cut off.
    cut, weights, article, rule = _targets(tokenizer, [question], max_tokens=8)
    assert segment_texts(tokenizer, question.article, article, rule)[:2] == [
        "The kitchen is north of the office.",
        None,
    ]
    np.testing.assert_allclose(cut[0][:2], [1.0, 0.0])
    assert weights[0] == 1.0
    # One memory slot: the first statement is older than the model keeps.
    single, _, _, _ = _targets(tokenizer, [question], max_sentences=1)
    np.testing.assert_allclose(single[0], [1.0])
    # A story whose only fact was cut: zero target, zero weight.
    first = [example for example in examples if example.task == 1][1]  # fact: statement 2 of 4
    none, weights, _, _ = _targets(tokenizer, [first], max_sentences=1)
    assert not none.any() and weights[0] == 0.0


def test_model_slots_hold_the_words_of_segment_texts(tokenizer, examples):
    # The layer's slot numbering and the gateway's segment_texts agree, also on a cut story.
    spec = qa_spec(["a", "b"], 30, 16, tokenizer.get_vocab_size(), max_sentences=3)
    article, rule = spec.input("article"), spec_evidence_head(spec).rule
    period = tokenizer.token_to_id(".")
    for example in examples[:6]:
        ids = encode_texts(tokenizer, [example.article], 30, "left")
        slot_ids, _, present = SentenceSlots(3, period, 4)(ids)
        texts = segment_texts(tokenizer, example.article, article, rule)
        for slot, text in enumerate(texts):
            words = [tokenizer.id_to_token(int(i)) for i in ids[0][np.asarray(slot_ids)[0] == slot]]
            assert float(present[0][slot]) == (text is not None)
            expected = [] if text is None else tokenizer.encode(text).tokens
            assert words == [token for token in expected if token != "."]


def test_evidence_head_shape_and_absent_slots():
    model = build_qa_model(TINY, vocab_size=20, answers=5, period_id=9)
    article = np.array([[1, 2, 9, 3, 9, 0, 0], [4, 9, 5, 6, 7, 8, 9]], np.int32)
    question = np.array([[1, 2], [3, 0]], np.int32)
    weights = model.predict({"article_ids": article, "question_ids": question}, verbose=0)[
        EVIDENCE_OUTPUT
    ]
    assert weights.shape == (2, TINY["max_sentences"]) and weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert not weights[:, 2:].any()  # two sentences each: every other slot weighs 0
    classic = build_qa_model({**TINY, "arch": "classic"}, vocab_size=20, answers=5, period_id=9)
    assert classic.output_names == ["answer_probs"]


@pytest.mark.parametrize("weight", [0.0, 2.5])
def test_loss_is_answer_loss_plus_weighted_evidence_loss(weight):
    hparams = {**TINY, "evidence_loss_weight": weight, "hop_supervision": False}
    model = build_qa_model(hparams, 20, 5, period_id=9)
    rng = np.random.default_rng(0)
    inputs = {
        "article_ids": rng.integers(1, 20, (4, 12)).astype(np.int32),
        "question_ids": rng.integers(1, 20, (4, 3)).astype(np.int32),
    }
    evidence = np.zeros((4, TINY["max_sentences"]), np.float32)
    evidence[:, 0] = 1.0
    targets = {"answer_probs": np.array([0, 1, 2, 3]), EVIDENCE_OUTPUT: evidence}
    result = model.evaluate(inputs, targets, verbose=0, return_dict=True)
    assert result["sentence_weights_loss"] > 0.1
    expected = result["answer_probs_loss"] + weight * result["sentence_weights_loss"]
    assert result["loss"] == pytest.approx(expected, rel=1e-4)


def test_exported_weights_point_at_the_supporting_sentence(qa_evidence_run):
    # The tiny memnet trained on the qa1 fixture until it has learned where to look, exported
    # (tests/support/qa_export.py, shared with test_qa_evidence_served): the served weights
    # read back through the gateway's segment_texts.
    data_dir, version = qa_evidence_run
    signature = tf.saved_model.load(str(version)).signatures[contract.SIGNATURE_NAME]
    tokenizer = load_tokenizer(version / contract.ASSETS_DIR / contract.TOKENIZER_FILE)
    spec = load_spec(version / contract.ASSETS_DIR / SPEC_FILE)
    head = spec_evidence_head(spec)
    assert head.field == "evidence" and head.input_field == "article" and head.top_k == 3
    assert head.rule == SegmentRule(separator_token=".", order="last_first", max_segments=20)
    article, rule = spec.input("article"), head.rule
    for example in read_babi(data_dir).examples:
        ids = encode_texts(tokenizer, [example.article], article.max_tokens, "left")
        question = encode_texts(tokenizer, [example.question], 16)
        outputs = signature(article_ids=tf.constant(ids), question_ids=tf.constant(question))
        weights = outputs[EVIDENCE_OUTPUT].numpy()
        assert weights.shape == (1, TINY["max_sentences"])
        texts = segment_texts(tokenizer, example.article, article, rule)
        assert texts[int(np.argmax(weights[0]))] == example.statements[example.supporting[0]]


def test_classic_architecture_has_no_evidence_head_or_targets(tmp_path):
    settings = RunSettings(data_dir=FIXTURES, model_repo=tmp_path / "repo", run_dir=tmp_path / "r")
    task = QaTask()
    data = task.prepare(settings, {**TINY, "arch": "classic"})
    assert [head.output for head in data.spec.heads] == ["answer_probs"]
    assert set(data.train_targets) == {"answer_probs"} and data.train_weights is None
    assert task.monitor() == ("val_accuracy", "max")
    memnet = task.prepare(settings, TINY)
    assert [head.output for head in memnet.spec.heads] == ["answer_probs", EVIDENCE_OUTPUT]
    assert task.monitor() == ("val_answer_probs_accuracy", "max")


def test_each_hop_is_shown_the_facts_in_order_and_cut_facts_weigh_zero(tokenizer, examples):
    path = next(example for example in examples if example.task == 19)  # facts "1 2" of 2
    where = next(example for example in examples if example.task == 1)  # one fact, line 1
    targets, _, _, _ = _targets(tokenizer, [path, where])
    per_hop, weights = hop_targets(targets, [path, where], hops=3)
    assert sorted(per_hop) == ["hop_weights_0", "hop_weights_1", "hop_weights_2"]
    # path: statement 0 (slot 1) first, then statement 1 (slot 0), then the last fact again
    assert [int(np.argmax(per_hop[f"hop_weights_{hop}"][0])) for hop in range(3)] == [1, 0, 0]
    assert [int(np.argmax(per_hop[f"hop_weights_{hop}"][1])) for hop in range(3)] == [1, 1, 1]
    assert all(weights[name].tolist() == [1.0, 1.0] for name in weights)
    cut, _, _, _ = _targets(tokenizer, [path], max_tokens=8)  # only slot 0 is kept
    per_hop, weights = hop_targets(cut, [path], hops=2)
    assert weights["hop_weights_0"].tolist() == [0.0] and not per_hop["hop_weights_0"].any()
    assert weights["hop_weights_1"].tolist() == [1.0] and per_hop["hop_weights_1"][0, 0] == 1.0


def test_with_hop_order_cycle_later_hops_go_through_the_facts_again(tokenizer, examples):
    path = next(example for example in examples if example.task == 19)  # facts "1 2" of 2
    where = next(example for example in examples if example.task == 1)  # one fact, line 1
    targets, _, _, _ = _targets(tokenizer, [path, where])
    per_hop, weights = hop_targets(targets, [path, where], hops=3, order="cycle")
    # path: statement 0 (slot 1), statement 1 (slot 0), then statement 0 again
    assert [int(np.argmax(per_hop[f"hop_weights_{hop}"][0])) for hop in range(3)] == [1, 0, 1]
    assert [int(np.argmax(per_hop[f"hop_weights_{hop}"][1])) for hop in range(3)] == [1, 1, 1]
    assert all(weights[name].tolist() == [1.0, 1.0] for name in weights)


@pytest.mark.parametrize(
    ("order", "expected"),
    [("repeat_last", [0, 1, 2, 2, 2]), ("cycle", [0, 1, 2, 0, 1])],
)
def test_hop_fact_by_order(order, expected):
    assert [hop_fact(hop, 3, order) for hop in range(5)] == expected
    assert [hop_fact(hop, 1, order) for hop in range(3)] == [0, 0, 0]


def test_unknown_hop_order_is_refused():
    with pytest.raises(ValueError, match="hop_order"):
        hop_fact(0, 2, "random")


def test_hop_supervision_adds_training_only_outputs_with_their_loss_weight():
    hparams = {**TINY, "hop_supervision": True, "hop_loss_weight": 0.5, "evidence_loss_weight": 2}
    model = build_qa_model(hparams, vocab_size=20, answers=5, period_id=9)
    assert set(model.output_names) == {
        "answer_probs",
        EVIDENCE_OUTPUT,
        "hop_weights_0",
        "hop_weights_1",
    }
    inputs = {
        "article_ids": np.array([[1, 2, 9, 3, 9]] * 2, np.int32),
        "question_ids": np.array([[1, 2]] * 2, np.int32),
    }
    slot = np.zeros((2, TINY["max_sentences"]), np.float32)
    slot[:, 1] = 1.0
    targets = {"answer_probs": np.array([0, 1]), EVIDENCE_OUTPUT: slot}
    targets |= {"hop_weights_0": slot, "hop_weights_1": slot}
    result = model.evaluate(inputs, targets, verbose=0, return_dict=True)
    expected = result["answer_probs_loss"] + 2 * result["sentence_weights_loss"]
    expected += 0.5 * (result["hop_weights_0_loss"] + result["hop_weights_1_loss"])
    assert result["loss"] == pytest.approx(expected, rel=1e-4)
