"""The ``profile`` task: a blogger's posts -> age (years), income group (proxy), gender.

Its targets, metrics and ``val_combined`` terms are :mod:`training.tasks.profile_targets`.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from tokenizers import Tokenizer

from serving.contract import TOKENIZER_FILE
from serving.literals import literal_posts
from serving.spec import BinaryHead, CategoricalHead, RegressionHead, ServingSpec, TextsInput
from serving.tokenization import encode_texts, join_posts, load_tokenizer
from training.data.blogs import (
    GENDERS,
    Blogger,
    load_income_groups,
    read_blogs,
    split_bloggers,
)
from training.models.profile import build_profile_model, set_tfidf_weights
from training.models.profile_heads import (
    AGE_BAND_LABELS,
    compile_profile_model,
    has_band_head,
)
from training.monitoring import VALIDATION_COMBINED, CombinedMonitor
from training.tasks.base import HParams, PreparedData, RunSettings
from training.tasks.profile_presets import PRESETS
from training.tasks.profile_targets import monitor_terms, profile_metrics, profile_targets
from training.tokenization import SEP_TOKEN, train_tokenizer


def blogger_text(
    blogger: Blogger, max_chars: int | None = None, tokenizer: Tokenizer | None = None
) -> str:
    """A blogger's posts as one text, exactly as the gateway joins a request's posts: with
    ``tokenizer`` (the text the model is trained on), a special token a post spells is plain
    text (:func:`serving.literals.literal_posts`), as the gateway reads it."""
    if tokenizer is None:
        return join_posts(blogger.posts, SEP_TOKEN, max_chars)
    return literal_posts(tokenizer, blogger.posts, SEP_TOKEN, max_chars)


EXAMPLE = {
    "posts": [
        "Finally finished my thesis draft today, time to celebrate with the lab.",
        "Long week at work; the new project deadline is Friday and the team is tired.",
    ]
}


AGE_BAND_HEAD = CategoricalHead(
    output="age_band_probs",
    field="age_band",
    description="Age band in years (<20, 20-29, 30+), from its own head: it may disagree "
    "with the age estimate near a band edge.",
    labels=list(AGE_BAND_LABELS),
)


def profile_spec(
    max_tokens: int,
    max_joined_chars: int | None,
    vocab_size: int,
    income_labels: Sequence[str],
    income_rules: Sequence[str],
    income_note: str,
    age_band: bool = False,
) -> ServingSpec:
    """The profile serving spec: ``posts`` -> ``age``, ``income_group`` (a proxy), ``gender``
    and, with ``age_band``, ``age_band`` (``age_band_probs`` ``[batch, 3]``: <20, 20-29, 30+).

    Posts are joined by the ``[SEP]`` token and the joined text is cut at ``max_joined_chars``
    characters, then its first ``max_tokens`` tokens are kept (right truncation), as in training.
    """
    return ServingSpec(
        title="Blog author profile",
        description="Estimates a blogger's age, income group (an industry proxy) and gender.",
        inputs=[
            TextsInput(
                field="posts",
                tensor="post_ids",
                description="The person's posts, any order.",
                separator=SEP_TOKEN,
                max_items=200,
                max_joined_chars=max_joined_chars,
                max_tokens=max_tokens,
                vocab_size=vocab_size,
            )
        ],
        heads=[
            RegressionHead(output="age", field="age", unit="years", description="Age estimate."),
            CategoricalHead(
                output="income_probs",
                field="income_group",
                description="Income group 0 (lowest) to 9 (highest): a proxy, see note.",
                labels=list(income_labels),
                label_descriptions=list(income_rules),
                note=income_note,
            ),
            BinaryHead(
                output="gender_prob",
                field="gender",
                description="Gender as self-reported in the corpus.",
                labels=(GENDERS[0], GENDERS[1]),
            ),
            *([AGE_BAND_HEAD] if age_band else []),
        ],
        example=EXAMPLE,
    )


class ProfileTask:
    """Blog Authorship profiling (see ``training.models.profile`` for the architectures)."""

    name = "profile"

    def hparams(self, preset: str) -> dict[str, Any]:
        """Hyperparameters of a preset (tiny, default or full)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        return dict(PRESETS[preset])

    def prepare(self, settings: RunSettings, hparams: HParams) -> PreparedData:
        """Read the corpus, split by blogger, train the tokenizer, encode, build targets."""
        caps = [cap for cap in (settings.max_examples, hparams.get("max_bloggers")) if cap]
        blogs = read_blogs(settings.data_dir, min(caps) if caps else None)
        train, validation = split_bloggers(
            blogs.bloggers, float(hparams["validation_fraction"]), settings.seed
        )
        max_length = int(hparams["max_length"])
        max_chars = max_length * int(hparams["chars_per_token"])
        train_texts = [blogger_text(blogger, max_chars) for blogger in train]
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        tokenizer_path = settings.run_dir / TOKENIZER_FILE
        sample = random.Random(settings.seed).sample(
            train_texts, min(len(train_texts), int(hparams["tokenizer_sample"]))
        )
        train_tokenizer(
            sample,
            vocab_size=int(hparams["vocab_size"]),
            min_frequency=int(hparams["tokenizer_min_frequency"]),
        ).save(str(tokenizer_path))
        tokenizer = load_tokenizer(tokenizer_path)
        income = load_income_groups()
        band_head = has_band_head(hparams)
        train_targets, train_weights = profile_targets(train, income, band_head)
        val_targets, val_weights = profile_targets(validation, income, band_head)
        # The tokenizer learnt from the posts as written; the model reads them as served.
        train_texts = [blogger_text(blogger, max_chars, tokenizer) for blogger in train]
        val_texts = [blogger_text(blogger, max_chars, tokenizer) for blogger in validation]
        return PreparedData(
            train_inputs={"post_ids": encode_texts(tokenizer, train_texts, max_length)},
            train_targets=train_targets,
            val_inputs={"post_ids": encode_texts(tokenizer, val_texts, max_length)},
            val_targets=val_targets,
            tokenizer_path=tokenizer_path,
            spec=profile_spec(
                max_length,
                max_chars,
                tokenizer.get_vocab_size(),
                [group["label"] for group in income.groups],
                [group["rule"] for group in income.groups],
                income.note,
                age_band=band_head,
            ),
            train_weights=train_weights,
            val_weights=val_weights,
            data_summary={
                "source": f"Blog Authorship Corpus ({', '.join(blogs.files)}), split by blogger",
                "files": blogs.files,
                "bloggers_read": len(blogs.bloggers),
                "bad_lines": blogs.bad_lines,
                "bad_line_samples": blogs.bad_line_samples,
                "train_bloggers": len(train),
                "validation_bloggers": len(validation),
                "train_income_labelled": int(train_weights["income_probs"].sum()),
                "validation_income_labelled": int(val_weights["income_probs"].sum()),
                "industries": dict(Counter(blogger.industry for blogger in train).most_common()),
                "income_is_proxy": True,
                "income_note": income.note,
                "max_length_tokens": max_length,
                "truncation": "right: the first max_length tokens of the joined posts",
                "tokenizer_trained_on_bloggers": len(sample),
                "tokenizer_vocab": tokenizer.get_vocab_size(),
            },
        )

    def build_model(self, hparams: HParams, data: PreparedData) -> keras.Model:
        """The compiled three-head model for the preset's architecture."""
        vocab_size = load_tokenizer(data.tokenizer_path).get_vocab_size()
        age_mean = float(np.mean(data.train_targets["age"]))
        model = build_profile_model(hparams, vocab_size, age_mean)
        if hparams["arch"] == "tfidf":
            set_tfidf_weights(
                model,
                data.train_inputs["post_ids"],
                data.train_targets["gender_prob"],
                float(hparams.get("gender_nb_alpha", 1.0)),
                data.train_targets["age"],
            )
        steps_per_epoch = math.ceil(len(data.train_targets["age"]) / int(hparams["batch_size"]))
        return compile_profile_model(model, hparams, steps_per_epoch)

    def evaluate(self, model: keras.Model, data: PreparedData) -> dict[str, Any]:
        """Validation gender accuracy, age MAE and income accuracy (labelled rows only)."""
        predictions = model.predict(data.val_inputs, batch_size=128, verbose=0)
        weights = (data.val_weights or {}).get("income_probs")
        if weights is None:
            weights = np.ones(len(data.val_targets["age"]), np.float32)
        return profile_metrics(predictions, data.val_targets, weights)

    def search_space(self, hp: Any) -> dict[str, Any]:
        """Hyperparameters for ``tune`` (keras-tuner ``HyperParameters``)."""
        return {
            "embedding_dim": hp.Choice("embedding_dim", [32, 64, 128]),
            "hidden_units": hp.Choice("hidden_units", [32, 64, 128]),
            "dropout": hp.Float("dropout", 0.1, 0.5, step=0.1),
            "learning_rate": hp.Choice("learning_rate", [0.001, 0.002, 0.005]),
            "age_loss_weight": hp.Choice("age_loss_weight", [0.05, 0.1, 0.2]),
        }

    def monitor(self) -> tuple[str, str]:
        """Early stopping, checkpoints and the LR schedule watch ``val_combined`` (lower is
        better; see ``monitor_callbacks``), so no head improves at the others' expense."""
        return (VALIDATION_COMBINED, "min")

    def monitor_callbacks(self, hparams: HParams, data: PreparedData) -> list[CombinedMonitor]:
        """The callback that logs ``val_combined``: ``monitor_weights`` of gender accuracy,
        age MAE and age-band accuracy, each error relative to a constant predictor fitted on
        the training targets (majority gender, median age, majority band)."""
        return [CombinedMonitor(monitor_terms(hparams["monitor_weights"], data.train_targets))]
