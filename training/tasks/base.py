"""The interface every training task implements, and what the pipeline hands it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy.typing as npt

from serving.spec import ServingSpec

Arrays = dict[str, npt.NDArray[Any]]
HParams = Mapping[str, Any]


@dataclass(frozen=True)
class RunSettings:
    """Where a training run reads and writes, and how big it is."""

    data_dir: Path
    model_repo: Path
    run_dir: Path  # checkpoints, CSV and TensorBoard logs, tokenizer, trials of this run
    preset: str = "default"  # "tiny" (smoke tests), "default" (make run), "full" (best quality)
    seed: int = 1337
    max_examples: int | None = None  # cap on examples read, for smoke tests


@dataclass
class PreparedData:
    """Tokenised training and validation arrays plus what the export needs besides weights.

    ``spec`` is the version's serving spec (``serving.spec``): training encodes its ids and
    sizes its heads by it, and the export writes it; ``tokenizer_path`` is the one tokenizer
    file every input of the built-in tasks uses.
    """

    train_inputs: Arrays
    train_targets: Arrays
    val_inputs: Arrays
    val_targets: Arrays
    tokenizer_path: Path
    spec: ServingSpec
    train_weights: Arrays | None = None  # per-output sample weights (e.g. masked income)
    val_weights: Arrays | None = None
    data_summary: dict[str, Any] = field(default_factory=dict)  # counts, bad lines, sources


class Task(Protocol):
    """A served model: ``qa``, ``profile``, ``similarity`` or ``nli``."""

    name: str

    def hparams(self, preset: str) -> dict[str, Any]:
        """Hyperparameters for a preset, including ``epochs`` and ``batch_size``."""
        ...

    def prepare(self, settings: RunSettings, hparams: HParams) -> PreparedData:
        """Read the data, split it (fixed seed), train/save the tokenizer, tokenise."""
        ...

    def build_model(self, hparams: HParams, data: PreparedData) -> keras.Model:
        """A compiled Keras functional model with the contract's input and output names."""
        ...

    def evaluate(self, model: keras.Model, data: PreparedData) -> dict[str, Any]:
        """Validation metrics for the model card (floats, or nested dicts of floats)."""
        ...

    def search_space(self, hp: Any) -> dict[str, Any]:
        """Hyperparameters drawn from a keras-tuner ``HyperParameters`` object for ``tune``."""
        ...

    def monitor(self) -> tuple[str, str]:
        """The validation quantity callbacks watch and its mode, e.g. ``("val_loss", "min")``."""
        ...
