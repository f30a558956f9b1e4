"""Keras models for ``profile``: a person's post ids -> age, income group, gender."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

from serving.contract import INCOME_GROUPS
from training.layers import MaskedMeanPooling
from training.models.profile_heads import AGE_BAND_LABELS, has_band_head
from training.models.profile_nb import (
    NbDense,
    age_nb_towers,
    document_frequency,
    log_count_ratio,
    set_age_nb_ratios,
    with_age_nb,
)
from training.models.profile_sparse import sparse_tfidf

ARCHITECTURES = ("tfidf", "bag", "classic")
# The gender head's NB-SVM term (``training.models.profile_nb``): none, linear or a tower.
GENDER_NB_KINDS = ("none", "linear", "tower")
NB_LAYER = "gender_nb"  # the layer holding the log-count ratio


@keras.saving.register_keras_serializable(package="profile")
class HashedBigrams(keras.layers.Layer):  # type: ignore[misc]
    """Ids of adjacent token pairs hashed into ``buckets`` (0 where either token is padding)."""

    def __init__(self, buckets: int, vocab_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.buckets = buckets
        self.vocab_size = vocab_size

    def call(self, ids: Any) -> Any:
        """``[batch, length]`` ids -> ``[batch, length - 1]`` bigram ids in ``[0, buckets]``."""
        first = keras.ops.cast(ids[:, :-1], "int64")
        second = keras.ops.cast(ids[:, 1:], "int64")
        hashed = keras.ops.mod(first * self.vocab_size + second, self.buckets) + 1
        both_real = keras.ops.logical_and(
            keras.ops.not_equal(first, 0), keras.ops.not_equal(second, 0)
        )
        return keras.ops.cast(keras.ops.where(both_real, hashed, 0), "int32")

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {**super().get_config(), "buckets": self.buckets, "vocab_size": self.vocab_size}


@keras.saving.register_keras_serializable(package="profile")
class TfIdfBag(keras.layers.Layer):  # type: ignore[misc]
    """Ids -> L2-normalised sublinear TF-IDF vector ``[batch, size]`` (padding weighs 0).

    The IDF table is a non-trainable weight: set it from training data with ``set_idf``, and
    it is saved with the model, so serving needs nothing but the ids.
    """

    def __init__(self, size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = size
        # XLA cannot compile the inference path's unique (a data-dependent shape): a model
        # with this layer gets no XLA (Keras's jit_compile "auto"; CPU-only machines never do).
        self.supports_jit = False

    def build(self, input_shape: Any) -> None:
        """The IDF table, ones until ``set_idf`` is called."""
        self.idf = self.add_weight(
            shape=(self.size,), initializer="ones", trainable=False, name="idf"
        )

    def set_idf(self, document_frequency: npt.NDArray[Any], documents: int) -> None:
        """Smoothed IDF ``log((1 + n) / (1 + df)) + 1`` with id 0 (padding) weighted 0."""
        idf = np.log((1.0 + documents) / (1.0 + document_frequency)) + 1.0
        idf[0] = 0.0
        self.idf.assign(idf.astype("float32"))

    def call(self, ids: Any, training: bool | None = None) -> Any:
        """Term counts -> ``log1p`` -> times IDF -> unit length: float32 ``[batch, size]``.

        Training: a dense tensor (what the model was always trained on). Inference
        (``training`` False or None, as Keras passes it to ``predict`` and to the exported
        serving function): the same values as a ``tf.SparseTensor`` with one entry per
        distinct id of a row (``training.models.profile_sparse``), so the layers reading it
        cost in proportion to a person's distinct terms, not to ``size``.
        """
        if not training:
            return sparse_tfidf(ids, self.idf, self.size)
        counts = keras.ops.cast(keras.ops.bincount(ids, minlength=self.size), "float32")
        return keras.ops.normalize(keras.ops.log1p(counts) * self.idf, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, int]:
        """``[batch, size]`` in either mode (the symbolic graph is the dense one)."""
        return (input_shape[0], self.size)

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {**super().get_config(), "size": self.size}


def _tfidf_features(ids: Any, hparams: Mapping[str, Any], vocab_size: int) -> Any:
    """TF-IDF bags of words (and of hashed bigrams) feeding a linear projection."""
    parts = [TfIdfBag(vocab_size, name="word_tfidf")(ids)]
    buckets = int(hparams.get("bigram_buckets", 0))
    if buckets:
        bigram_ids = HashedBigrams(buckets, vocab_size, name="bigrams")(ids)
        parts.append(TfIdfBag(buckets + 1, name="bigram_tfidf")(bigram_ids))
    return keras.layers.Concatenate()(parts) if len(parts) > 1 else parts[0]


def set_tfidf_weights(
    model: keras.Model,
    ids: npt.NDArray[Any],
    gender: npt.NDArray[Any] | None = None,
    nb_alpha: float = 1.0,
    age: npt.NDArray[Any] | None = None,
) -> None:
    """Set the IDF tables of a ``tfidf`` model from the training id matrix and, if the model
    has the gender NB term, its log-count ratios from ``gender`` (``[rows]`` or ``[rows, 1]``,
    1 = the positive class) with smoothing ``nb_alpha``; if it has the age NB towers, theirs
    from ``age`` (years, ``[rows]`` or ``[rows, 1]``: at or above each band edge vs below)."""
    blocks = [(model.get_layer("word_tfidf"), ids)]
    try:
        bigram = model.get_layer("bigram_tfidf")
    except ValueError:  # built without bigrams
        pass
    else:
        hashed = np.concatenate(
            [
                keras.ops.convert_to_numpy(model.get_layer("bigrams")(ids[start : start + 512]))
                for start in range(0, len(ids), 512)
            ]
        )
        blocks.append((bigram, hashed))
    frequencies = [document_frequency(block_ids, layer.size) for layer, block_ids in blocks]
    for (layer, block_ids), frequency in zip(blocks, frequencies, strict=True):
        layer.set_idf(frequency, len(block_ids))
    set_age_nb_ratios(model, blocks, frequencies, age, nb_alpha)
    try:
        ratio_layer = model.get_layer(NB_LAYER)
    except ValueError:  # built without the NB term
        return
    if gender is None:
        raise ValueError("the model has a gender NB term: pass the training gender targets")
    positive = np.asarray(gender).reshape(-1) > 0.5
    ratio_layer.set_ratio(
        np.concatenate(
            [
                log_count_ratio(
                    document_frequency(block_ids[positive], layer.size),
                    document_frequency(block_ids[~positive], layer.size),
                    nb_alpha,
                )
                for layer, block_ids in blocks
            ]
        )
    )


def _bag_features(ids: Any, hparams: Mapping[str, Any], vocab_size: int) -> Any:
    """Mean word embeddings plus mean hashed-bigram embeddings (a fastText-style encoder)."""
    width = int(hparams["embedding_dim"])
    words = keras.layers.Embedding(vocab_size, width, name="word_embedding")(ids)
    parts = [MaskedMeanPooling(name="word_mean")(words, ids)]
    buckets = int(hparams.get("bigram_buckets", 0))
    if buckets:
        bigram_ids = HashedBigrams(buckets, vocab_size, name="bigrams")(ids)
        bigrams = keras.layers.Embedding(buckets + 1, width, name="bigram_embedding")(bigram_ids)
        parts.append(MaskedMeanPooling(name="bigram_mean")(bigrams, bigram_ids))
    return keras.layers.Concatenate()(parts) if len(parts) > 1 else parts[0]


def _conv_block(hidden: Any, filters: int, kernel_size: int, residual: bool, name: str) -> Any:
    output = keras.layers.Conv1D(
        filters, kernel_size, padding="same", activation="relu", name=f"{name}_conv"
    )(hidden)
    if residual:  # deep stacks train better when each block only learns a correction
        if hidden.shape[-1] != filters:
            hidden = keras.layers.Conv1D(filters, 1, name=f"{name}_project")(hidden)
        output = keras.layers.Add()([hidden, output])
    return keras.layers.MaxPooling1D(2, padding="same", name=f"{name}_pool")(output)


def _classic_features(ids: Any, hparams: Mapping[str, Any], vocab_size: int) -> Any:
    """Embedding, a Conv1D + max-pooling stack (residual when deep), global max pooling."""
    hidden = keras.layers.Embedding(vocab_size, int(hparams["embedding_dim"]), name="embedding")(
        ids
    )
    blocks = int(hparams["conv_blocks"])
    for index in range(blocks):
        hidden = _conv_block(
            hidden,
            int(hparams["filters"]),
            int(hparams["kernel_size"]),
            residual=blocks > 2 and index > 0,
            name=f"block_{index}",
        )
    return keras.layers.GlobalMaxPooling1D(name="global_max")(hidden)


def _gender_nb_logit(features: Any, dropped: Any, hparams: Mapping[str, Any]) -> Any:
    """The gender logit's NB-SVM term over the TF-IDF features, or None (``gender_nb``).

    It reads ``dropped`` (the features after the shared dropout) or, with
    ``gender_nb_own_dropout``, its own dropout of ``features`` (another mask: costs the mask).

    ``gender_nb``: ``none``; ``linear`` (a dense logit over ``features * r``, the NB-SVM of
    ``training.models.profile_nb``); ``tower`` (``gender_nb_units`` ReLU units over
    ``features * r``, then the logit); only the ``tfidf`` arch has it (the others ignore the
    option). Raises ``ValueError`` for another value or for a tower without units.
    """
    kind = hparams.get("gender_nb", "none")
    if kind not in GENDER_NB_KINDS:
        raise ValueError(f"unknown gender_nb {kind!r}; choose from {GENDER_NB_KINDS}")
    if kind == "none" or hparams["arch"] != "tfidf":
        return None  # the other archs have no TF-IDF features (so `--arch classic` still works)
    if hparams.get("gender_nb_own_dropout", False):
        features = keras.layers.Dropout(float(hparams["dropout"]), name="gender_nb_dropout")(
            features
        )
    else:
        features = dropped
    if kind == "linear":
        # Zeros: the model starts as the plain one and learns how much of the NB term to add.
        return NbDense(1, kernel_initializer="zeros", name=NB_LAYER)(features)
    units = int(hparams.get("gender_nb_units", 0))
    if units < 1:
        raise ValueError("gender_nb 'tower' needs gender_nb_units >= 1")
    hidden = NbDense(units, activation="relu", name=NB_LAYER)(features)
    hidden = keras.layers.Dropout(float(hparams["dropout"]))(hidden)
    return keras.layers.Dense(1, kernel_initializer="zeros", name="gender_nb_logit")(hidden)


def _gender_head(hidden: Any, nb_logit: Any) -> Any:
    """P(male) ``[batch, 1]``: sigmoid of the hidden layer's logit (+ the NB term's)."""
    if nb_logit is None:
        return keras.layers.Dense(1, activation="sigmoid", name="gender_prob")(hidden)
    logit = keras.layers.Add()([keras.layers.Dense(1, name="gender_logit")(hidden), nb_logit])
    return keras.layers.Activation("sigmoid", name="gender_prob")(logit)


def build_profile_model(
    hparams: Mapping[str, Any], vocab_size: int, age_mean: float
) -> keras.Model:
    """The uncompiled three-head model; ``hparams["arch"]`` picks the encoder."""
    ids = keras.Input((None,), dtype="int32", name="post_ids")
    arch = hparams["arch"]
    if arch == "tfidf":
        features = _tfidf_features(ids, hparams, vocab_size)
    elif arch == "bag":
        features = _bag_features(ids, hparams, vocab_size)
    elif arch == "classic":
        features = _classic_features(ids, hparams, vocab_size)
    else:
        raise ValueError(f"unknown profile arch {arch!r}; choose from {ARCHITECTURES}")
    dropped = keras.layers.Dropout(float(hparams["dropout"]))(features)
    nb_logit = _gender_nb_logit(features, dropped, hparams)
    age_nb = age_nb_towers(dropped, hparams)
    features = dropped
    hidden = keras.layers.Dense(int(hparams["hidden_units"]), activation="relu", name="hidden")(
        features
    )
    hidden = keras.layers.Dropout(float(hparams["dropout"]))(hidden)
    outputs = {
        # Starting at the mean age saves the first epochs from just learning the offset.
        "age": with_age_nb(
            hidden, age_nb, 1, "age", bias_initializer=keras.initializers.Constant(age_mean)
        ),
        "income_probs": keras.layers.Dense(
            INCOME_GROUPS, activation="softmax", name="income_probs"
        )(hidden),
        "gender_prob": _gender_head(hidden, nb_logit),
    }
    if has_band_head(hparams):
        # The band as its own softmax: the regression's band is only as good as its distance
        # to an edge, while the bands are what a reader of the answer often wants.
        outputs["age_band_probs"] = with_age_nb(
            hidden, age_nb, len(AGE_BAND_LABELS), "age_band_probs", activation="softmax"
        )
    return keras.Model({"post_ids": ids}, outputs, name=f"profile_{arch}")
