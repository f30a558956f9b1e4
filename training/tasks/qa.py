"""The ``qa`` task: bAbI stories + questions -> one answer label, all 20 tasks in one model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

from serving.contract import PAD_ID, TOKENIZER_FILE
from serving.encoding import segment_texts
from serving.spec import SegmentRule, TextInput
from serving.tokenization import encode_texts, load_tokenizer
from training.data.babi import BabiExample, read_babi, split_by_task
from training.models.qa import EVIDENCE_OUTPUT, build_qa_model
from training.tasks.base import Arrays, HParams, PreparedData, RunSettings
from training.tokenization import train_tokenizer

PERIOD = "."
COMMON: dict[str, Any] = {
    "learning_rate": 0.005,
    "clipnorm": 40.0,
    "dropout": 0.1,
    "time_noise": 0.1,
    "answer_hidden": 128,
    "gated_hops": True,
    "evidence_loss_weight": 1.0,  # memnet: supporting-fact supervision of the attention
    "vocab_size": 1000,
    "bucket_by_length": True,
}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        **COMMON,
        "arch": "memnet",
        "embedding_dim": 16,
        "hops": 2,
        "max_sentences": 20,
        "lstm_units": 16,
        "article_max_tokens": 120,
        "question_max_tokens": 16,
        "epochs": 1,
        "batch_size": 8,
        "answer_hidden": 16,
        "patience": 2,
        "validation_fraction": 0.25,
    },
    "default": {
        **COMMON,
        "arch": "memnet",
        "embedding_dim": 64,
        "hops": 3,
        "max_sentences": 50,
        "lstm_units": 64,
        "article_max_tokens": 360,
        "question_max_tokens": 16,
        "epochs": 24,  # about 4-5 minutes on 2 cores
        "batch_size": 32,
        "patience": 6,
        "validation_fraction": 0.1,
    },
}
PRESETS["full"] = {
    **PRESETS["default"],
    "max_sentences": 70,
    "article_max_tokens": 500,
    "epochs": 80,
    "patience": 12,
}


class QaTask:
    """bAbI question answering (see ``training.models.qa`` for the architectures)."""

    name = "qa"

    def __init__(self) -> None:
        # Task number of each validation example, set by prepare() for per-task accuracy.
        self.validation_tasks: npt.NDArray[np.int32] = np.zeros(0, np.int32)
        # Keras prefixes metric names with the output's name once a model has two outputs.
        self.monitored = "val_accuracy"

    def hparams(self, preset: str) -> dict[str, Any]:
        """Hyperparameters of a preset (tiny, default or full)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        return dict(PRESETS[preset])

    def prepare(self, settings: RunSettings, hparams: HParams) -> PreparedData:
        """Read all task files, split by task and story, train the tokenizer, encode."""
        babi = read_babi(settings.data_dir, settings.max_examples)
        train, validation = split_by_task(
            babi.examples, float(hparams["validation_fraction"]), settings.seed
        )
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        tokenizer_path = settings.run_dir / TOKENIZER_FILE
        texts = [text for example in train for text in (example.article, example.question)]
        train_tokenizer(texts, vocab_size=int(hparams["vocab_size"])).save(str(tokenizer_path))
        answers = sorted({example.answer for example in babi.examples})
        self.validation_tasks = np.array([example.task for example in validation], np.int32)
        preprocessing = {
            "inputs": {
                "article_ids": {
                    "max_length": int(hparams["article_max_tokens"]),
                    "truncation": "left",
                },
                "question_ids": {
                    "max_length": int(hparams["question_max_tokens"]),
                    "truncation": "right",
                },
            },
            "pad_id": PAD_ID,
            "lowercase": True,
        }
        train_inputs, val_inputs = (
            encode_examples(tokenizer_path, rows, preprocessing) for rows in (train, validation)
        )
        train_targets: Arrays = {"answer_probs": answer_indices(train, answers)}
        val_targets: Arrays = {"answer_probs": answer_indices(validation, answers)}
        train_weights = val_weights = None
        if hparams.get("arch", "memnet") == "memnet":
            self.monitored = "val_answer_probs_accuracy"
            tokenizer = load_tokenizer(tokenizer_path)
            article = article_input(hparams, tokenizer.get_vocab_size())
            rule = sentence_rule(hparams)
            targets_and_weights = [
                evidence_targets(tokenizer, rows, article, rule) for rows in (train, validation)
            ]
            train_targets[EVIDENCE_OUTPUT], train_evidence = targets_and_weights[0]
            val_targets[EVIDENCE_OUTPUT], val_evidence = targets_and_weights[1]
            # Keras wants a weight per output once any output has one.
            train_weights = {"answer_probs": np.ones(len(train), np.float32)}
            val_weights = {"answer_probs": np.ones(len(validation), np.float32)}
            train_weights[EVIDENCE_OUTPUT] = train_evidence
            val_weights[EVIDENCE_OUTPUT] = val_evidence
        return PreparedData(
            train_inputs=train_inputs,
            train_targets=train_targets,
            val_inputs=val_inputs,
            val_targets=val_targets,
            train_weights=train_weights,
            val_weights=val_weights,
            tokenizer_path=tokenizer_path,
            preprocessing=preprocessing,
            labels={"answers": answers},
            data_summary={
                "source": "bAbI v1.1 English 1k, qa1-qa20 train files",
                "files": babi.files,
                "examples": len(babi.examples),
                "train_examples": len(train),
                "validation_examples": len(validation),
                "validation_split": "stratified by task, whole stories, fixed seed",
                "bad_lines": babi.bad_lines,
                "bad_line_samples": babi.bad_line_samples,
                "answers": len(answers),
                "examples_per_task": dict(
                    sorted(Counter(f"qa{e.task}" for e in babi.examples).items())
                ),
            },
        )

    def build_model(self, hparams: HParams, data: PreparedData) -> keras.Model:
        """The compiled model named by ``hparams["arch"]`` (memnet or classic)."""
        tokenizer = load_tokenizer(data.tokenizer_path)
        period_id = tokenizer.token_to_id(PERIOD)
        return build_qa_model(
            hparams,
            vocab_size=tokenizer.get_vocab_size(),
            answers=len(data.labels["answers"]),
            period_id=-1 if period_id is None else period_id,
        )

    def evaluate(self, model: keras.Model, data: PreparedData) -> dict[str, Any]:
        """Validation accuracy overall, per bAbI task and averaged over tasks."""
        predictions = model.predict(data.val_inputs, batch_size=256, verbose=0)
        correct = (
            np.argmax(predictions["answer_probs"], axis=-1) == data.val_targets["answer_probs"]
        )
        per_task = {
            f"qa{task}": float(np.mean(correct[self.validation_tasks == task]))
            for task in sorted(set(self.validation_tasks.tolist()))
        }
        metrics: dict[str, Any] = {
            "accuracy": float(np.mean(correct)) if len(correct) else 0.0,
            "mean_task_accuracy": float(np.mean(list(per_task.values()))) if per_task else 0.0,
            "per_task_accuracy": per_task,
            "tasks_at_least_95_percent": sum(value >= 0.95 for value in per_task.values()),
        }
        if EVIDENCE_OUTPUT in predictions:
            metrics["evidence_top1_accuracy"] = evidence_accuracy(
                predictions[EVIDENCE_OUTPUT], data.val_targets[EVIDENCE_OUTPUT]
            )
        return metrics

    def search_space(self, hp: Any) -> dict[str, Any]:
        """Tunable hyperparameters for keras-tuner."""
        return {
            "embedding_dim": hp.Choice("embedding_dim", [32, 48, 64]),
            "hops": hp.Int("hops", 1, 3),
            "learning_rate": hp.Choice("learning_rate", [0.002, 0.005, 0.01]),
            "dropout": hp.Float("dropout", 0.0, 0.3, step=0.1),
        }

    def monitor(self) -> tuple[str, str]:
        """Callbacks watch validation answer accuracy (what the product is judged on)."""
        return (self.monitored, "max")


def encode_examples(
    tokenizer_path: Path, examples: list[BabiExample], preprocessing: dict[str, Any]
) -> dict[str, npt.NDArray[np.int32]]:
    """Article and question id matrices, through the same encoder the gateway uses."""
    tokenizer = load_tokenizer(tokenizer_path)
    lengths = preprocessing["inputs"]
    return {
        "article_ids": encode_texts(
            tokenizer,
            [example.article for example in examples],
            lengths["article_ids"]["max_length"],
            "left",
        ),
        "question_ids": encode_texts(
            tokenizer,
            [example.question for example in examples],
            lengths["question_ids"]["max_length"],
            "right",
        ),
    }


def answer_indices(examples: list[BabiExample], answers: list[str]) -> npt.NDArray[np.int32]:
    """The index of each example's answer in the answer vocabulary."""
    index = {answer: position for position, answer in enumerate(answers)}
    return np.array([index[example.answer] for example in examples], np.int32)


def sentence_rule(hparams: HParams) -> SegmentRule:
    """The memnet's sentence slots as a serving rule: periods end sentences, last first."""
    return SegmentRule(
        separator_token=PERIOD, order="last_first", max_segments=int(hparams["max_sentences"])
    )


def article_input(hparams: HParams, vocab_size: int) -> TextInput:
    """The article input as the serving spec declares it (left truncation, no special tokens)."""
    return TextInput(
        field="article",
        tensor="article_ids",
        max_tokens=int(hparams["article_max_tokens"]),
        truncation="left",
        add_special_tokens=False,
        vocab_size=vocab_size,
    )


def evidence_targets(
    tokenizer: Any, examples: list[BabiExample], article: TextInput, rule: SegmentRule
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Targets ``[n, max_segments]`` and sample weights ``[n]`` for ``sentence_weights``.

    Each bAbI statement ends with a period, so statement ``i`` of ``k`` is sentence slot
    ``k - 1 - i`` (slot 0 = the last); a slot exists if :func:`serving.encoding.segment_texts`
    (the gateway's own rule) gives it a text after truncation. Supporting facts in slots that
    do not exist (the story was cut) are dropped; the rest share weight 1 equally. Examples
    with no kept fact get target zeros and sample weight 0.
    """
    targets = np.zeros((len(examples), rule.max_segments), np.float32)
    for row, example in enumerate(examples):
        kept = sum(
            text is not None for text in segment_texts(tokenizer, example.article, article, rule)
        )
        slots = {len(example.statements) - 1 - index for index in example.supporting}
        for slot in slots:
            if 0 <= slot < kept:
                targets[row, slot] = 1.0
    totals = targets.sum(axis=1, keepdims=True)
    targets = np.divide(targets, totals, out=np.zeros_like(targets), where=totals > 0)
    return targets, (totals[:, 0] > 0).astype(np.float32)


def evidence_accuracy(weights: npt.NDArray[Any], targets: npt.NDArray[Any]) -> float:
    """Share of examples with a kept supporting fact whose heaviest slot is one of them."""
    supervised = targets.sum(axis=1) > 0
    if not supervised.any():
        return 0.0
    heaviest = np.argmax(weights[supervised], axis=1)
    return float(np.mean(targets[supervised][np.arange(len(heaviest)), heaviest] > 0))
