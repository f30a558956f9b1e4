"""The ``nli`` task: premise + hypothesis -> entailment label and relatedness (SICK).

Default recipe: the pretrained MiniLM sentence encoder stays frozen, every distinct sentence
is encoded once, and the two heads are fitted on those cached vectors (:meth:`NliTask.
fit_target`); the exported model is the whole siamese model (encoder + heads), so serving
sees token ids as usual. Fine-tuning the top blocks instead (``trainable_layers > 0``) fits
the whole model on token ids.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from serving.contract import TOKENIZER_FILE
from serving.encoding import encode_instances
from serving.spec import CategoricalHead, RegressionHead, ServingSpec, TextInput
from serving.tokenization import load_tokenizer
from training import minilm
from training.correlation import pearson, spearman
from training.data.sick import LABELS, NliPair, read_sick, stratified_split
from training.models.nli import (
    ENTAILMENT_OUTPUT,
    INPUTS,
    RELATEDNESS_HIGH,
    RELATEDNESS_LOW,
    RELATEDNESS_OUTPUT,
    build_nli_model,
    compile_nli_model,
    pair_vectors,
)
from training.tasks.base import Arrays, HParams, PreparedData, RunSettings

SICK_FOLDER = "sick"
EXAMPLE = {"premise": "A man is playing a guitar.", "hypothesis": "A person plays an instrument."}
PRESETS: dict[str, dict[str, Any]] = {
    "default": {
        "arch": "minilm",
        # 0 = the encoder is frozen and the heads are fitted on cached sentence vectors:
        # validation accuracy 0.88 in seconds, where one epoch of fine-tuning the top 2
        # blocks (after the heads) took minutes and fell to 0.85 (see README_models.md).
        "trainable_layers": 0,
        "dropout": 0.1,  # inside the encoder (only used when fine-tuning)
        "head_dropout": 0.1,
        "hidden_units": 0,  # 0 = softmax directly on [u, v, |u-v|, u*v], as SBERT
        "learning_rate": 3e-3,
        "entailment_loss_weight": 1.0,
        "relatedness_loss_weight": 0.5,  # MSE in (1-5) units is about as large as the CE
        "max_length": 64,  # SICK sentences are at most 30 MiniLM tokens
        "epochs": 60,
        "batch_size": 32,
        "patience": 6,
        "validation_fraction": 0.1,
    },
}
PRESETS["tiny"] = {
    **PRESETS["default"],
    "arch": "random",  # a small random MiniLM-shaped encoder: no pretrained weights to load
    "hidden_size": 16,
    "max_length": 32,
    "epochs": 2,
    "patience": 1,
    "validation_fraction": 0.25,
}
# Not clearly better than the default: validation accuracy 0.878 vs 0.868 (5 of 500 pairs)
# but relatedness Pearson 0.831 vs 0.858; with Adam 3e-3 it scored 0.864 / 0.845.
PRESETS["full"] = {
    **PRESETS["default"],
    "hidden_units": 256,
    "learning_rate": 1e-3,
    "epochs": 200,
    "patience": 12,
}


def nli_spec(max_tokens: int, vocab_size: int) -> ServingSpec:
    """The serving spec: ``premise`` and ``hypothesis`` -> ``entailment`` and ``relatedness``."""

    def sentence(field: str, tensor: str, description: str) -> TextInput:
        return TextInput(
            field=field,
            tensor=tensor,
            description=description,
            max_tokens=max_tokens,
            vocab_size=vocab_size,
        )

    return ServingSpec(
        title="Natural language inference",
        description="Whether a premise entails, contradicts or is neutral to a hypothesis, "
        "and how related the two sentences are (trained on SICK).",
        inputs=[
            sentence("premise", INPUTS[0], "The sentence taken as true."),
            sentence("hypothesis", INPUTS[1], "The sentence judged against the premise."),
        ],
        heads=[
            CategoricalHead(
                output=ENTAILMENT_OUTPUT,
                field="entailment",
                labels=list(LABELS),
                description="Does the premise entail the hypothesis, contradict it, or neither?",
            ),
            RegressionHead(
                output=RELATEDNESS_OUTPUT,
                field="relatedness",
                unit="relatedness (1-5)",
                clip=(RELATEDNESS_LOW, RELATEDNESS_HIGH),
                description="Semantic relatedness as SICK annotators rated it: 1 unrelated, "
                "5 maximally related (symmetric in the two sentences).",
            ),
        ],
        example=EXAMPLE,
    )


def encode(spec: ServingSpec, tokenizer_path: Path, pairs: list[NliPair]) -> Arrays:
    """Signature inputs for pairs, through the gateway's own ``encode_instances``."""
    instances = [{"premise": pair.premise, "hypothesis": pair.hypothesis} for pair in pairs]
    return dict(encode_instances(spec, {TOKENIZER_FILE: load_tokenizer(tokenizer_path)}, instances))


def targets(pairs: list[NliPair]) -> Arrays:
    """Label indices int32 ``[n]`` and relatedness float32 ``[n, 1]`` (1-5)."""
    return {
        ENTAILMENT_OUTPUT: np.array([pair.label for pair in pairs], np.int32),
        RELATEDNESS_OUTPUT: np.array([[pair.relatedness] for pair in pairs], np.float32),
    }


class NliTask:
    """Natural language inference on SICK (see ``training.models.nli``)."""

    name = "nli"

    def hparams(self, preset: str) -> dict[str, Any]:
        """Hyperparameters of a preset (tiny, default or full)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        return dict(PRESETS[preset])

    def prepare(self, settings: RunSettings, hparams: HParams) -> PreparedData:
        """Read SICK train + trial, carve a stratified validation split, encode both sides."""
        data = read_sick(settings.data_dir / SICK_FOLDER)
        fraction = float(hparams["validation_fraction"])
        train, validation = stratified_split(data.pairs, fraction, settings.seed)
        if settings.max_examples:
            train, validation = train[: settings.max_examples], validation[: settings.max_examples]
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        tokenizer_path = settings.run_dir / TOKENIZER_FILE
        # The MiniLM WordPiece vocabulary for every arch: the random tiny encoder shares it.
        shutil.copyfile(minilm.package_dir() / minilm.TOKENIZER_FILE, tokenizer_path)
        spec = nli_spec(int(hparams["max_length"]), load_tokenizer(tokenizer_path).get_vocab_size())
        return PreparedData(
            train_inputs=encode(spec, tokenizer_path, train),
            train_targets=targets(train),
            val_inputs=encode(spec, tokenizer_path, validation),
            val_targets=targets(validation),
            tokenizer_path=tokenizer_path,
            spec=spec,
            data_summary={
                "files": data.files,
                "bad_lines": data.bad_lines,
                "bad_line_samples": data.bad_line_samples,
                "split": f"{SICK_FOLDER}/{' + '.join(data.files)} pooled; per label, "
                f"{fraction:.0%} drawn for validation (random.Random({settings.seed}))",
                "train_pairs": len(train),
                "validation_pairs": len(validation),
                "train_labels": dict(Counter(LABELS[pair.label] for pair in train)),
                "validation_labels": dict(Counter(LABELS[pair.label] for pair in validation)),
                "premise": "sentence_A",
                "hypothesis": "sentence_B",
            },
        )

    def build_model(self, hparams: HParams, data: PreparedData) -> keras.Model:
        """The compiled siamese model (encoder + both heads)."""
        model, _, _ = build_nli_model(hparams)
        return compile_nli_model(model, hparams)

    def fit_target(
        self, model: keras.Model, data: PreparedData, hparams: HParams
    ) -> tuple[keras.Model, PreparedData]:
        """What the pipeline fits: the heads on cached vectors when the encoder is frozen.

        The heads are layers of ``model`` (shared, not copied), so fitting them trains the
        model that is evaluated and exported. With ``trainable_layers > 0`` the whole model
        is fitted on token ids.
        """
        if int(hparams["trainable_layers"]) > 0:
            return model, data
        encoder, heads = model.get_layer("minilm_encoder"), model.get_layer("heads")
        vectors = pair_vectors(encoder, [data.train_inputs, data.val_inputs], INPUTS)
        cached = replace(data, train_inputs=vectors[0], val_inputs=vectors[1])
        return compile_nli_model(heads, hparams), cached

    def evaluate(self, model: keras.Model, data: PreparedData) -> dict[str, Any]:
        """Validation accuracy (and its majority-class baseline) and relatedness correlations."""
        predicted = model.predict(data.val_inputs, batch_size=64, verbose=0)
        labels = data.val_targets[ENTAILMENT_OUTPUT]
        guesses = np.argmax(predicted[ENTAILMENT_OUTPUT], axis=1)
        gold = data.val_targets[RELATEDNESS_OUTPUT]
        scores = np.clip(predicted[RELATEDNESS_OUTPUT], RELATEDNESS_LOW, RELATEDNESS_HIGH)
        confusion = np.zeros((len(LABELS), len(LABELS)), np.int64)
        np.add.at(confusion, (labels, guesses), 1)
        return {
            "entailment_accuracy": float(np.mean(guesses == labels)),
            "majority_class_accuracy": float(np.max(np.bincount(labels)) / len(labels)),
            "confusion_matrix": {
                "rows_gold_columns_predicted": list(LABELS),
                "counts": confusion.tolist(),
            },
            "relatedness_pearson": pearson(scores, gold),
            "relatedness_spearman": spearman(scores, gold),
            "relatedness_mae": float(np.mean(np.abs(scores - gold))),
            "validation_pairs": len(labels),
        }

    def search_space(self, hp: Any) -> dict[str, Any]:
        """Hyperparameters for ``tune`` (keras-tuner ``HyperParameters``)."""
        return {
            "learning_rate": hp.Choice("learning_rate", [1e-3, 3e-3]),
            "hidden_units": hp.Choice("hidden_units", [0, 256]),
            "relatedness_loss_weight": hp.Choice("relatedness_loss_weight", [0.25, 0.5, 1.0]),
        }

    def monitor(self) -> tuple[str, str]:
        """Callbacks watch the validation loss (weighted sum of both heads' losses)."""
        return ("val_loss", "min")
