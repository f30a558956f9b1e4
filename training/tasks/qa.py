"""The ``qa`` task: bAbI stories + questions -> one answer label, all 20 tasks in one model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

from serving.contract import TOKENIZER_FILE
from serving.encoding import encode_instances
from serving.spec import CategoricalHead, SegmentWeightsHead, ServingSpec, TextInput
from serving.tokenization import load_tokenizer
from training.data.babi import (
    BabiExample,
    answer_labels,
    read_babi,
    repeat_tasks,
    split_by_task,
)
from training.models.qa import EVIDENCE_OUTPUT, build_qa_model
from training.tasks.base import Arrays, HParams, PreparedData, RunSettings
from training.tasks.qa_evidence import (
    MAX_HOPS,
    PERIOD,
    evidence_accuracy,
    evidence_head,
    evidence_summary,
    evidence_targets,
    hop_targets,
    own_hops,
    with_hops,
)
from training.tasks.qa_presets import PRESETS
from training.tokenization import train_tokenizer

EXAMPLE = {
    "article": "Mary moved to the bathroom. John went to the hallway. "
    "Mary travelled to the office.",
    "question": "Where is Mary?",
}


def qa_spec(
    answers: Sequence[str],
    article_max_tokens: int,
    question_max_tokens: int,
    vocab_size: int,
    max_sentences: int | None = None,
) -> ServingSpec:
    """The qa serving spec: ``article`` and ``question`` -> the ``answer`` label.

    The article is cut on the left (the end of a story is nearest the question). With
    ``max_sentences`` (the memnet), also the ``evidence``: ``sentence_weights`` over the
    article's sentences (:func:`training.tasks.qa_evidence.evidence_head`).
    """
    heads: list[CategoricalHead | SegmentWeightsHead] = [
        CategoricalHead(
            output="answer_probs",
            field="answer",
            description="The answer word, from the answers seen in training.",
            labels=list(answers),
            top_k=1,
        )
    ]
    if max_sentences is not None:
        heads.append(evidence_head(max_sentences))
    return ServingSpec(
        title="bAbI question answering",
        description="Answers a question about a short story with one word (bAbI tasks 1-20).",
        inputs=[
            TextInput(
                field="article",
                tensor="article_ids",
                description="The story (bAbI style).",
                max_tokens=article_max_tokens,
                truncation="left",
                vocab_size=vocab_size,
            ),
            TextInput(
                field="question",
                tensor="question_ids",
                description="A question answered by one word.",
                max_tokens=question_max_tokens,
                vocab_size=vocab_size,
            ),
        ],
        heads=list(heads),
        example=EXAMPLE,
    )


def answer_head(spec: ServingSpec) -> CategoricalHead:
    """The spec's ``answer_probs`` head (its labels size the model's last layer)."""
    for head in spec.heads:
        if isinstance(head, CategoricalHead) and head.output == "answer_probs":
            return head
    raise ValueError("the qa spec has no categorical answer_probs head")


class QaTask:
    """bAbI question answering (see ``training.models.qa`` for the architectures)."""

    name = "qa"

    def __init__(self) -> None:
        # Task number of each validation example, set by prepare() for per-task accuracy.
        self.validation_tasks: npt.NDArray[np.int32] = np.zeros(0, np.int32)
        # Keras prefixes metric names with the output's name once a model has two outputs.
        self.monitored = "val_accuracy"
        # Per-hop targets and weights for MAX_HOPS hops (train, validation), set by prepare()
        # with hop_supervision: fit_target gives a tuning trial those of its own hops.
        self.hop_arrays: list[tuple[Arrays, Arrays]] = []

    def hparams(self, preset: str) -> dict[str, Any]:
        """Hyperparameters of a preset (tiny, default or full)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        return dict(PRESETS[preset])

    def prepare(self, settings: RunSettings, hparams: HParams) -> PreparedData:
        """Read all task files, split by task and story, train the tokenizer, encode."""
        babi = read_babi(settings.data_dir, settings.max_examples)
        answers = answer_labels(babi)  # before any work: DataError for fewer than 2
        train, validation = split_by_task(
            babi.examples, float(hparams["validation_fraction"]), settings.seed
        )
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        tokenizer_path = settings.run_dir / TOKENIZER_FILE
        texts = [text for example in train for text in (example.article, example.question)]
        train_tokenizer(texts, vocab_size=int(hparams["vocab_size"])).save(str(tokenizer_path))
        # After the tokenizer: oversampling changes what is fitted, not the vocabulary.
        distinct = len(train)
        train = repeat_tasks(train, hparams.get("task_repeats") or {})
        self.validation_tasks = np.array([example.task for example in validation], np.int32)
        memnet = hparams.get("arch", "memnet") == "memnet"
        tokenizer = load_tokenizer(tokenizer_path)
        spec = qa_spec(
            answers,
            int(hparams["article_max_tokens"]),
            int(hparams["question_max_tokens"]),
            tokenizer.get_vocab_size(),
            int(hparams["max_sentences"]) if memnet else None,
        )
        train_inputs, val_inputs = (
            encode_examples(tokenizer_path, rows, spec) for rows in (train, validation)
        )
        train_targets: Arrays = {"answer_probs": answer_indices(train, answers)}
        val_targets: Arrays = {"answer_probs": answer_indices(validation, answers)}
        train_weights = val_weights = None
        self.monitored = "val_accuracy"
        if memnet:
            self.monitored = "val_answer_probs_accuracy"
            targets_and_weights = [
                evidence_targets(tokenizer, rows, spec) for rows in (train, validation)
            ]
            train_targets[EVIDENCE_OUTPUT], train_evidence = targets_and_weights[0]
            val_targets[EVIDENCE_OUTPUT], val_evidence = targets_and_weights[1]
            # Keras wants a weight per output once any output has one.
            train_weights = {"answer_probs": np.ones(len(train), np.float32)}
            val_weights = {"answer_probs": np.ones(len(validation), np.float32)}
            train_weights[EVIDENCE_OUTPUT] = train_evidence
            val_weights[EVIDENCE_OUTPUT] = val_evidence
            self.hop_arrays = []
            if hparams.get("hop_supervision"):
                # Built for as many hops as any model of this task may have (a tuner samples
                # "hops" after the data is prepared); the data carries the model's own.
                hops = max(int(hparams["hops"]), MAX_HOPS)
                for rows, targets, weights in (
                    (train, train_targets, train_weights),
                    (validation, val_targets, val_weights),
                ):
                    self.hop_arrays.append(
                        hop_targets(
                            targets[EVIDENCE_OUTPUT],
                            rows,
                            hops,
                            str(hparams.get("hop_order", "repeat_last")),
                        )
                    )
                    own = own_hops(self.hop_arrays[-1], int(hparams["hops"]))
                    targets.update(own[0])
                    weights.update(own[1])
        return PreparedData(
            train_inputs=train_inputs,
            train_targets=train_targets,
            val_inputs=val_inputs,
            val_targets=val_targets,
            train_weights=train_weights,
            val_weights=val_weights,
            tokenizer_path=tokenizer_path,
            spec=spec,
            data_summary={
                "source": "bAbI v1.1 English 1k, qa1-qa20 train files",
                "files": babi.files,
                "examples": len(babi.examples),
                "train_examples": distinct,
                "train_examples_fitted": len(train),
                "validation_examples": len(validation),
                "validation_split": "stratified by task, whole stories, fixed seed",
                "bad_lines": babi.bad_lines,
                "bad_line_samples": babi.bad_line_samples,
                "answers": len(answers),
                "examples_per_task": dict(
                    sorted(Counter(f"qa{e.task}" for e in babi.examples).items())
                ),
                **evidence_summary(train_weights, val_weights),
            },
        )

    def build_model(self, hparams: HParams, data: PreparedData) -> keras.Model:
        """The compiled model named by ``hparams["arch"]`` (memnet or classic)."""
        tokenizer = load_tokenizer(data.tokenizer_path)
        period_id = tokenizer.token_to_id(PERIOD)
        return build_qa_model(
            hparams,
            vocab_size=tokenizer.get_vocab_size(),
            answers=len(answer_head(data.spec).labels),
            period_id=-1 if period_id is None else period_id,
            answer_labels=answer_head(data.spec).labels,
        )

    def fit_target(
        self, model: keras.Model, data: PreparedData, hparams: HParams
    ) -> tuple[keras.Model, PreparedData]:
        """The model, and the data with the per-hop targets of the model's own ``hops``."""
        if not self.hop_arrays:
            return model, data
        return model, with_hops(data, self.hop_arrays, int(hparams["hops"]))

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
            "hops": hp.Int("hops", 1, MAX_HOPS),
            "learning_rate": hp.Choice("learning_rate", [0.002, 0.005, 0.01]),
            "dropout": hp.Float("dropout", 0.0, 0.3, step=0.1),
        }

    def monitor(self) -> tuple[str, str]:
        """Callbacks watch validation answer accuracy (what the product is judged on)."""
        return (self.monitored, "max")


def encode_examples(
    tokenizer_path: Path, examples: list[BabiExample], spec: ServingSpec
) -> dict[str, npt.NDArray[np.int32]]:
    """Article and question id matrices, by the spec, as the gateway encodes requests."""
    tokenizers = {TOKENIZER_FILE: load_tokenizer(tokenizer_path)}
    instances = [{"article": example.article, "question": example.question} for example in examples]
    return encode_instances(spec, tokenizers, instances)


def answer_indices(examples: list[BabiExample], answers: list[str]) -> npt.NDArray[np.int32]:
    """The index of each example's answer in the answer vocabulary."""
    index = {answer: position for position, answer in enumerate(answers)}
    return np.array([index[example.answer] for example in examples], np.int32)
