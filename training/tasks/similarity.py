"""The ``similarity`` task: two sentences -> a symmetric similarity score in [0, 1]."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

from serving.contract import PAD_ID, TOKENIZER_FILE
from serving.literals import literal_text
from serving.spec import ScoreHead, ServingSpec, TextInput
from serving.tokenization import encode_texts, load_tokenizer
from training import minilm
from training.correlation import pearson, spearman
from training.data.sts import SentencePair, load_pairs
from training.models.similarity import (
    COSINE_OUTPUT,
    build_similarity_model,
    compile_similarity_model,
)
from training.models.similarity_cache import cached_inputs, cached_top_model
from training.tasks.base import Arrays, HParams, PreparedData, RunSettings
from training.tokenization import train_tokenizer

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "arch": "classic",
        "vocab_size": 2000,
        "embedding_dim": 8,
        "conv_filters": 8,
        "hidden_units": 8,
        "dropout": 0.1,
        "learning_rate": 0.005,
        "lr_decay": False,
        "max_length": 32,
        "extra_data": [],
        "epochs": 1,
        "batch_size": 16,
        "patience": 1,
        "validation_fraction": 0.2,
    },
    "default": {
        "arch": "minilm",
        # The top 4 of 6 transformer blocks are fine-tuned, block i at learning rate
        # peak * 0.8 ** (5 - i) (layer_lr_decay), and the score's two scalars at 100x the
        # peak (head_lr_multiplier: at 1x they barely move in 180 steps, so the blocks had to
        # do the calibration): STS dev Spearman 0.8951 (seeds 42 / 7: 0.8947 / 0.8926) vs
        # 0.889 for the top 2 blocks at one rate, for ~1.25x the fit CPU (README_models.md).
        "trainable_layers": 4,
        "layer_lr_decay": 0.8,
        "head_lr_multiplier": 100.0,
        "dropout": 0.1,
        # Peak of a 10% linear warmup then cosine decay to 0 over the run (lr_decay): 0.889
        # Spearman vs 0.883 with a constant 2e-5, at the same cost.
        "learning_rate": 1e-4,
        "lr_decay": True,
        "warmup_fraction": 0.1,
        # Weight EMA (Keras use_ema) copied in at each epoch's end; 0 = off (0.98: 0.888).
        "ema_momentum": 0.0,
        # Fit the top blocks on cached states of the frozen lower ones (cheaper epochs, but
        # no dropout below them; 2 epochs: 0.889); off.
        "cache_frozen": False,
        # CoSENT (Su 2022) on the cosine, weighted against the MSE on the score; off: at
        # weight 1 it scored 0.875 Spearman against 0.889 (training/README_models.md).
        "cosent_weight": 0.0,
        "max_length": 64,
        "extra_data": [],
        "epochs": 1,
        "batch_size": 32,
        "bucket_by_length": True,  # the pipeline batches similar lengths, trimmed (speed)
        "patience": 3,  # moot for 1 epoch; used by ``--arch classic --epochs 8``
        "validation_fraction": 0.2,
        # Used when --arch classic is chosen:
        "vocab_size": 20_000,
        "embedding_dim": 128,
        "conv_filters": 128,
        "hidden_units": 64,
    },
}
PRESETS["full"] = {
    **PRESETS["default"],
    "trainable_layers": 6,  # every block (the embeddings stay frozen)
    # As measured (one rate for every block and the head); the default's factors untried here.
    "layer_lr_decay": 1.0,
    "head_lr_multiplier": 1.0,
    # The setting of the best run (0.894 after 1 epoch); 1e-4 with decay scored 0.892 here.
    "learning_rate": 2e-5,
    "lr_decay": False,
    "batch_size": 16,
    "epochs": 3,
    "patience": 1,
}
# Applied when --arch picks an architecture other than the preset's own (epochs and batch size
# are the pipeline's: pass --epochs too, e.g. ``--arch classic --epochs 8``).
ARCH_SETTINGS: dict[str, dict[str, Any]] = {
    # STS + SICK scored 0.578 Spearman; the runs that also added MRPC (binary labels mapped
    # to 0.4 / 1.0) scored 0.43-0.47, though with other learning rates or patience.
    "classic": {"learning_rate": 0.001, "lr_decay": False, "dropout": 0.2, "extra_data": ["sick"]},
    "minilm": {
        "learning_rate": 1e-4,
        "lr_decay": True,
        "dropout": 0.1,
        "extra_data": [],
        "trainable_layers": 4,
        "layer_lr_decay": 0.8,
        "head_lr_multiplier": 100.0,
    },
}


EXAMPLE = {"text_a": "A man is playing a guitar.", "text_b": "Someone plays the guitar."}


def similarity_spec(max_tokens: int, vocab_size: int) -> ServingSpec:
    """The similarity serving spec: ``text_a`` and ``text_b`` -> ``score`` in [0, 1]."""

    def sentence(field: str, tensor: str) -> TextInput:
        return TextInput(
            field=field,
            tensor=tensor,
            description="A sentence.",
            max_tokens=max_tokens,
            vocab_size=vocab_size,
        )

    return ServingSpec(
        title="Sentence similarity",
        description="How alike two sentences are in meaning (symmetric).",
        inputs=[sentence("text_a", "left_ids"), sentence("text_b", "right_ids")],
        heads=[
            ScoreHead(
                output="score",
                field="score",
                range=(0.0, 1.0),
                meaning="semantic similarity: STS score / 5",
                description="1 = same meaning, 0 = unrelated.",
            )
        ],
        example=EXAMPLE,
    )


def encode_pairs(tokenizer_path: Path, pairs: Sequence[SentencePair], max_length: int) -> Arrays:
    """Left and right id matrices for pairs, through the shared ``encode_texts``; a special
    token a sentence spells is plain text, as the gateway reads it (``literal_text``)."""
    tokenizer = load_tokenizer(tokenizer_path)
    left = [literal_text(tokenizer, pair.left) for pair in pairs]
    right = [literal_text(tokenizer, pair.right) for pair in pairs]
    return {
        "left_ids": encode_texts(tokenizer, left, max_length),
        "right_ids": encode_texts(tokenizer, right, max_length),
    }


def score_targets(pairs: Sequence[SentencePair], hparams: HParams) -> Arrays:
    """``score`` targets ``[pairs, 1]`` (STS score / 5), and the same for the training-only
    ``cosine`` output when CoSENT is on (it uses only their order)."""
    scores = np.array([[pair.score] for pair in pairs], np.float32)
    if hparams["arch"] == "minilm" and float(hparams.get("cosent_weight", 0.0)):
        return {"score": scores, COSINE_OUTPUT: scores.copy()}
    return {"score": scores}


def predict_sorted_by_length(model: keras.Model, inputs: Arrays) -> npt.NDArray[np.float32]:
    """Scores in input order, predicted in length order (short batches cost less)."""
    lengths = sum(np.count_nonzero(ids != PAD_ID, axis=1) for ids in inputs.values())
    order = np.argsort(lengths, kind="stable")
    ordered = model.predict(
        {key: ids[order] for key, ids in inputs.items()}, batch_size=64, verbose=0
    )["score"]
    scores = np.empty_like(ordered)
    scores[order] = ordered
    return np.asarray(scores, np.float32)


class SimilarityTask:
    """Sentence similarity (see ``training.models.similarity`` for the architectures)."""

    name = "similarity"

    def hparams(self, preset: str) -> dict[str, Any]:
        """Hyperparameters of a preset (tiny, default or full)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        # preset_arch tells effective_hparams whether --arch switched the architecture.
        return {**PRESETS[preset], "preset_arch": PRESETS[preset]["arch"]}

    def prepare(self, settings: RunSettings, hparams: HParams) -> PreparedData:
        """Read STS (+ extras), get the tokenizer, encode both sides of every pair."""
        hparams = self.effective_hparams(hparams)
        train, validation, summary = load_pairs(
            settings.data_dir,
            hparams["extra_data"],
            float(hparams["validation_fraction"]),
            settings.seed,
        )
        if settings.max_examples:
            train, validation = train[: settings.max_examples], validation[: settings.max_examples]
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        tokenizer_path = settings.run_dir / TOKENIZER_FILE
        if hparams["arch"] == "minilm":
            # The pretrained encoder only understands its own WordPiece vocabulary.
            shutil.copyfile(minilm.package_dir() / minilm.TOKENIZER_FILE, tokenizer_path)
        else:
            texts = [text for pair in train for text in (pair.left, pair.right)]
            tokenizer = train_tokenizer(texts, int(hparams["vocab_size"]), kind="wordpiece")
            tokenizer.save(str(tokenizer_path))
        max_length = int(hparams["max_length"])
        return PreparedData(
            train_inputs=encode_pairs(tokenizer_path, train, max_length),
            train_targets=score_targets(train, hparams),
            val_inputs=encode_pairs(tokenizer_path, validation, max_length),
            val_targets=score_targets(validation, hparams),
            tokenizer_path=tokenizer_path,
            spec=similarity_spec(max_length, load_tokenizer(tokenizer_path).get_vocab_size()),
            data_summary={
                **summary,
                "max_length_tokens": max_length,
                "score": "STS score / 5",
                # The card's hparams are the preset's; these are what the model really used.
                "arch_settings": {key: hparams[key] for key in ARCH_SETTINGS[hparams["arch"]]},
            },
        )

    def build_model(self, hparams: HParams, data: PreparedData) -> keras.Model:
        """The compiled siamese model for the preset's architecture."""
        hparams = self.effective_hparams(hparams)
        vocab_size = load_tokenizer(data.tokenizer_path).get_vocab_size()
        steps = -(-len(data.train_targets["score"]) // int(hparams["batch_size"]))
        model = build_similarity_model(hparams, vocab_size)
        return compile_similarity_model(model, hparams, steps * int(hparams["epochs"]))

    def fit_target(
        self, model: keras.Model, data: PreparedData, hparams: HParams
    ) -> tuple[keras.Model, PreparedData]:
        """What the pipeline fits: with ``cache_frozen`` (MiniLM), the top blocks on cached
        states of the frozen lower ones (``training.models.similarity_cache``); else all.

        The cached model's layers are ``model``'s own, so fitting it trains ``model``.
        """
        hparams = self.effective_hparams(hparams)
        if hparams["arch"] != "minilm" or not hparams.get("cache_frozen"):
            return model, data
        blocks = int(hparams["trainable_layers"])
        table, (train, validation) = cached_inputs(
            model, [data.train_inputs, data.val_inputs], blocks
        )
        cached = cached_top_model(model, table, blocks)
        steps = -(-len(data.train_targets["score"]) // int(hparams["batch_size"]))
        compile_similarity_model(cached, hparams, steps * int(hparams["epochs"]))
        return cached, replace(data, train_inputs=train, val_inputs=validation)

    def evaluate(self, model: keras.Model, data: PreparedData) -> dict[str, Any]:
        """Validation Pearson and Spearman correlations of score with the gold score / 5."""
        predicted = predict_sorted_by_length(model, data.val_inputs)
        gold = data.val_targets["score"]
        return {
            "pearson": pearson(predicted, gold),
            "spearman": spearman(predicted, gold),
            "mae": float(np.mean(np.abs(np.ravel(predicted) - np.ravel(gold)))),
            "validation_pairs": len(gold),
        }

    def search_space(self, hp: Any) -> dict[str, Any]:
        """Hyperparameters for ``tune`` (keras-tuner ``HyperParameters``)."""
        return {
            "learning_rate": hp.Choice("learning_rate", [1e-5, 2e-5, 4e-5]),
            "trainable_layers": hp.Int("trainable_layers", 2, 6, step=2),
            "batch_size": hp.Choice("batch_size", [16, 32]),
        }

    def monitor(self) -> tuple[str, str]:
        """Early stopping and checkpoints watch the validation loss (MSE)."""
        return ("val_loss", "min")

    @staticmethod
    def effective_hparams(hparams: HParams) -> dict[str, Any]:
        """``--arch`` other than the preset's also switches to that architecture's settings."""
        merged = dict(hparams)
        if merged["arch"] != merged.get("preset_arch", merged["arch"]):
            merged.update(ARCH_SETTINGS[merged["arch"]])
        return merged
