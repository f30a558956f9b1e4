"""The similarity optimizer: Adam with per-layer learning-rate multipliers and a weight EMA.

Layer-wise learning-rate decay (Clark et al. 2020, ELECTRA; Sun et al. 2019, "How to
fine-tune BERT") gives transformer block ``i`` of ``n`` the rate ``peak * decay ** (n - 1 -
i)``: the top block moves most, lower blocks, whose features are more general, less. Adam
divides each gradient by its own running scale, so scaling gradients would change nothing:
the multiplier has to scale the step, i.e. the learning rate given to ``update_step``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import keras

# The score head's two scalars (``CosineScore`` named "score"); a MiniLM block's layers are
# named ``layer_<index>_<part>`` (training/minilm.py).
HEAD_PATTERN = r"(?:^|/)score/"


@keras.saving.register_keras_serializable(package="similarity")
class ScaledAdam(keras.optimizers.Adam):  # type: ignore[misc]
    """Adam whose step for a variable is multiplied by the first matching factor.

    ``multipliers`` maps a regular expression searched in ``variable.path`` to a factor;
    variables matching none use factor 1.
    """

    def __init__(self, multipliers: Mapping[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multipliers = dict(multipliers or {})
        self._factors: dict[Any, float] = {}

    def build(self, variables: Any) -> None:
        """Adam's slots, and each variable's factor looked up once by its path."""
        super().build(variables)
        for variable in variables:
            self._factors[self._var_key(variable)] = self.factor(variable.path)

    def factor(self, path: str) -> float:
        """The multiplier of the variable at ``path`` (1.0 if no pattern matches)."""
        for pattern, value in self.multipliers.items():
            if re.search(pattern, path):
                return float(value)
        return 1.0

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Adam's step at ``learning_rate`` times the variable's factor."""
        factor = self._factors.get(self._var_key(variable), 1.0)
        if factor != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, factor)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {**super().get_config(), "multipliers": self.multipliers}


def lr_multipliers(hparams: Mapping[str, Any], blocks: int = 6) -> dict[str, float]:
    """Per-variable factors from ``layer_lr_decay`` (block ``i`` of ``blocks`` gets
    ``decay ** (blocks - 1 - i)``; 1 = off) and ``head_lr_multiplier`` (the score scalars)."""
    decay = float(hparams.get("layer_lr_decay", 1.0))
    factors: dict[str, float] = {}
    head = float(hparams.get("head_lr_multiplier", 1.0))
    if head != 1.0:
        factors[HEAD_PATTERN] = head
    if decay != 1.0:
        for index in range(blocks):
            factors[rf"(?:^|/)layer_{index}_"] = decay ** (blocks - 1 - index)
    return factors


def similarity_optimizer(
    hparams: Mapping[str, Any], learning_rate: Any, steps_per_epoch: int | None = None
) -> keras.optimizers.Optimizer:
    """Adam with gradient clipping at norm 1, per-layer factors (:func:`lr_multipliers`) and,
    with ``ema_momentum`` > 0, a weight EMA copied into the model every ``steps_per_epoch``
    steps (each epoch's end, so validation and checkpoints see the averaged weights)."""
    momentum = float(hparams.get("ema_momentum", 0.0))
    ema: dict[str, Any] = {}
    if momentum:
        ema = {"use_ema": True, "ema_momentum": momentum}
        ema["ema_overwrite_frequency"] = steps_per_epoch
    return ScaledAdam(lr_multipliers(hparams), learning_rate=learning_rate, clipnorm=1.0, **ema)
