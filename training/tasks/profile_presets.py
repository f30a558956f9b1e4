"""Hyperparameter presets of the ``profile`` task (``tiny`` for smoke tests, ``default`` for
``make run``, ``full``); the figures behind each choice are in training/README_models.md."""

from __future__ import annotations

from typing import Any

COMMON: dict[str, Any] = {
    "arch": "tfidf",
    "embedding_dim": 64,
    "bigram_buckets": 0,
    "tokenizer_sample": 4000,  # bloggers whose text trains the tokenizer (speed)
    "chars_per_token": 6,  # texts are cut at max_length * this many characters (speed)
    "filters": 128,
    "kernel_size": 5,
    "conv_blocks": 3,
    "hidden_units": 64,
    "dropout": 0.3,
    "learning_rate": 0.002,
    # Weight EMA (Keras use_ema), copied into the model at each epoch's end; 0 = off.
    "ema_momentum": 0.0,
    # 0.2 (was 0.1), tried together with the band term: MAE 3.49 / band 0.781 vs 3.55 / 0.775.
    "age_loss_weight": 0.2,
    "age_huber_delta": 2.0,
    # Band-aware age loss (training.models.profile_heads.BandAwareHuber): Huber + this x soft-band
    # cross-entropy: keeps the age estimate's band in line (the band head serves the band).
    "age_band_loss_weight": 1.0,
    "age_band_temperature": 1.0,
    # The age band's own softmax head (age_band_probs, served as age_band), this loss weight;
    # 0 = no head. 0.5: validation band accuracy 0.810 (head) vs 0.778 (the age's band).
    "age_band_head_weight": 0.5,
    "income_loss_weight": 0.3,
    # The gender head's loss weight; 2.0 was tried (gender 0.820 vs 0.828, MAE 3.58, band
    # 0.808: gender peaks in epoch 1, then overfits) (training/README_models.md).
    "gender_loss_weight": 1.0,
    # NB-SVM term of the gender logit (training.models.profile_nb): none, linear or tower
    # (gender_nb_units ReLU units over the TF-IDF features times their log-count ratio).
    "gender_nb": "none",
    "gender_nb_units": 32,
    "gender_nb_alpha": 1.0,  # smoothing count of the ratio (1 in Wang & Manning 2012)
    "gender_nb_own_dropout": False,  # the NB term's own dropout mask (else the shared one)
    # Age NB towers (training.models.profile_nb.age_nb_towers): this many ReLU units per band
    # edge over the features times that edge's log-count ratio, feeding age and band; 0 = off.
    # 16: band +0.45 / +0.7 points on seeds 1337 / 2, but gender 0.8315 on 1337, +39 fit
    # CPU-s, so off (README_models.md, round 4).
    "age_nb_units": 0,
    "validation_fraction": 0.1,
    "tokenizer_min_frequency": 2,
    # val_combined = weighted mean of each head's validation error / a constant predictor's
    # error (training.monitoring); checkpoints and early stopping watch it. The band term is
    # the band head's accuracy: the band the served answer gives.
    "monitor_weights": {
        "gender_prob_accuracy": 1.0,
        "age_mae": 0.5,
        "age_band_probs_accuracy": 0.5,
    },
}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        **COMMON,
        "embedding_dim": 8,
        "bigram_buckets": 1000,
        "filters": 8,
        "hidden_units": 8,
        "vocab_size": 2000,
        "max_length": 128,
        "max_bloggers": 200,
        "epochs": 1,
        "batch_size": 16,
        "patience": 2,
        "validation_fraction": 0.2,
        "tokenizer_min_frequency": 1,
        "tokenizer_sample": 200,
    },
    "default": {
        **COMMON,
        "vocab_size": 50_000,
        "bigram_buckets": 131_071,
        # The whole text: the corpus's longest blogger has 5,257 tokens (median 1,450), so
        # nothing is cut (gender 0.827 after 2 epochs vs 0.821 with the first 2048 tokens).
        "max_length": 8192,
        "max_bloggers": None,
        # The default run's best val_combined epoch was the second (a third cost 2-5 min on
        # the busy machine and scored lower); training is seeded, so 2 epochs = that run.
        "epochs": 2,
        "batch_size": 64,
        "patience": 1,
        # 0.9: gender 0.828 / MAE 3.54 / band 0.816 vs 0.824 / 3.54 / 0.810 without, for ~6%
        # more fit CPU; 0.99 lagged (MAE 3.69, band 0.800) (training/README_models.md).
        "ema_momentum": 0.9,
        # An NB-SVM tower for gender: log-loss 0.381 vs 0.392 (seed 1337) and 0.420 vs 0.431
        # (seed 2), gender 0.836 / 0.820 vs 0.828 / 0.804, for ~+15-45 fit CPU-s; smoothing 5
        # (fewer rare features with large ratios) beat 1 on both seeds (README_models.md).
        "gender_nb": "tower",
        "gender_nb_units": 32,
        "gender_nb_alpha": 5.0,
    },
}
PRESETS["full"] = {
    **PRESETS["default"],
    "bigram_buckets": 262_143,
    "tokenizer_sample": 8000,
    "epochs": 8,
    "patience": 2,
}
