"""The ``profile`` model's age bands, losses, metrics, optimizer and compile step.

Age bands (<20, 20-29, 30+) are read by the ``age_band_probs`` head, the band metric of the
age estimate and the band-aware age loss; ``compile_profile_model`` gives each head its loss,
loss weight and metrics (Keras's multi-output pattern).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

# Age bands <20, 20-29, 30+: the corpus's three age groups (13-17, 23-27, 33-48) with the gaps
# split evenly (``training.data.blogs.Blogger.age_band`` uses the same edges).
AGE_BAND_EDGES = (20.0, 30.0)
# The labels the ``age_band_probs`` head is served with (``serving_spec.json``), band order.
AGE_BAND_LABELS = ("<20", "20-29", "30+")


def age_bands(ages: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Band index 0 (<20), 1 (20-29) or 2 (30+) of each age in years (any shape -> flat)."""
    return np.digitize(np.ravel(np.asarray(ages, np.float64)), AGE_BAND_EDGES).astype(np.int64)


def age_band_match(y_true: Any, y_pred: Any) -> Any:
    """1.0 where the predicted age falls in the true age's band, else 0.0 (``[batch]``)."""
    edges = list(AGE_BAND_EDGES)
    true_band = keras.ops.digitize(keras.ops.reshape(y_true, (-1,)), edges)
    predicted_band = keras.ops.digitize(keras.ops.reshape(y_pred, (-1,)), edges)
    return keras.ops.cast(keras.ops.equal(true_band, predicted_band), "float32")


@keras.saving.register_keras_serializable(package="profile")
class AgeBandAccuracy(keras.metrics.MeanMetricWrapper):  # type: ignore[misc]
    """Share of rows whose predicted age is in the true age's band (<20, 20-29, 30+)."""

    def __init__(self, name: str = "band_accuracy", dtype: Any = None) -> None:
        super().__init__(age_band_match, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="profile")
class BandAwareHuber(keras.losses.Loss):  # type: ignore[misc]
    """Huber loss on age (years) plus ``band_weight`` x cross-entropy of a soft age band.

    The soft band of a predicted age ``a`` comes from ``P(band > k) = sigmoid((a - edge_k) /
    temperature)`` at the band edges (20, 30), so the extra term pushes a prediction that sits
    near an edge to the true band's side, so the age estimate's band is right more often
    (the ``age_band_probs`` head, when built, learns the band itself). ``band_weight=0`` is
    plain Huber.
    """

    def __init__(
        self,
        delta: float = 2.0,
        band_weight: float = 0.0,
        temperature: float = 1.0,
        name: str = "band_aware_huber",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.delta, self.band_weight, self.temperature = delta, band_weight, temperature

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """Per-row loss ``[batch]`` from true and predicted ages ``[batch, 1]``."""
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        loss = keras.losses.huber(y_true, y_pred, delta=self.delta)
        if not self.band_weight:
            return loss
        edges = keras.ops.convert_to_tensor(AGE_BAND_EDGES, y_pred.dtype)
        above = keras.ops.sigmoid((keras.ops.reshape(y_pred, (-1, 1)) - edges) / self.temperature)
        probs = keras.ops.stack(
            [1.0 - above[:, 0], above[:, 0] - above[:, 1], above[:, 1]], axis=-1
        )
        band = keras.ops.digitize(keras.ops.reshape(y_true, (-1,)), list(AGE_BAND_EDGES))
        true_prob = keras.ops.sum(probs * keras.ops.one_hot(band, 3, dtype=probs.dtype), axis=-1)
        return loss - self.band_weight * keras.ops.log(keras.ops.maximum(true_prob, 1e-7))

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {
            **super().get_config(),
            "delta": self.delta,
            "band_weight": self.band_weight,
            "temperature": self.temperature,
        }


def has_band_head(hparams: Mapping[str, Any]) -> bool:
    """Whether the model has the ``age_band_probs`` head (``age_band_head_weight`` > 0)."""
    return float(hparams.get("age_band_head_weight", 0.0)) > 0


def profile_optimizer(
    hparams: Mapping[str, Any], steps_per_epoch: int | None = None
) -> keras.optimizers.Optimizer:
    """Adam at ``learning_rate``; with ``ema_momentum`` > 0, a weight EMA (Keras ``use_ema``).

    The moving average is copied into the model every ``steps_per_epoch`` steps (at each
    epoch's end, before validation), so validation, checkpoints and the restored best weights
    are the averaged ones; without ``steps_per_epoch`` Keras copies it in when ``fit`` ends.
    """
    momentum = float(hparams.get("ema_momentum", 0.0))
    if not momentum:
        return keras.optimizers.Adam(float(hparams["learning_rate"]))
    return keras.optimizers.Adam(
        float(hparams["learning_rate"]),
        use_ema=True,
        ema_momentum=momentum,
        ema_overwrite_frequency=steps_per_epoch,
    )


def compile_profile_model(
    model: keras.Model, hparams: Mapping[str, Any], steps_per_epoch: int | None = None
) -> keras.Model:
    """Per-head losses and loss weights; age uses Huber loss (robust, close to MAE).

    Loss weights: ``age_loss_weight``, ``income_loss_weight``, ``age_band_head_weight`` and
    ``gender_loss_weight`` (1.0 when absent).

    ``steps_per_epoch`` (training batches per epoch) times the weight EMA's copies
    (:func:`profile_optimizer`).
    """
    band: dict[str, Any] = {}
    if has_band_head(hparams):
        band = {
            "loss": keras.losses.SparseCategoricalCrossentropy(),
            "weight": float(hparams["age_band_head_weight"]),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }
    model.compile(
        optimizer=profile_optimizer(hparams, steps_per_epoch),
        loss={
            "age": BandAwareHuber(
                delta=float(hparams.get("age_huber_delta", 2.0)),
                band_weight=float(hparams.get("age_band_loss_weight", 0.0)),
                temperature=float(hparams.get("age_band_temperature", 1.0)),
            ),
            "income_probs": keras.losses.SparseCategoricalCrossentropy(),
            "gender_prob": keras.losses.BinaryCrossentropy(),
            **({"age_band_probs": band["loss"]} if band else {}),
        },
        loss_weights={
            "age": float(hparams["age_loss_weight"]),
            "income_probs": float(hparams["income_loss_weight"]),
            "gender_prob": float(hparams.get("gender_loss_weight", 1.0)),
            **({"age_band_probs": band["weight"]} if band else {}),
        },
        metrics={
            "age": [keras.metrics.MeanAbsoluteError(name="mae"), AgeBandAccuracy()],
            "gender_prob": [keras.metrics.BinaryAccuracy(name="accuracy")],
            **({"age_band_probs": band["metrics"]} if band else {}),
        },
        # Weighted, so bloggers without an income label do not count in income accuracy.
        weighted_metrics={
            "income_probs": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        },
    )
    return model
