"""TensorBoard beyond scalars: weight and activation histograms, and the embedding projector.

A training run's ``tensorboard/`` folder holds these runs (TensorBoard's word for a folder
of event files):

- ``train/``, ``validation/``: Keras's callback: per-epoch scalars (loss, metrics, learning
  rate) and, in ``train/``, one histogram per weight per epoch (``histogram_freq``).
- ``activations/``: one histogram per layer output per epoch, from a fixed validation
  sample run through the model in inference mode.
- ``projector/``: ``projector_config.pbtxt``, a TF checkpoint of every token embedding
  matrix and one ``metadata_<name>.tsv`` per matrix (the tokenizer's vocabulary, one token
  per row), for the Projector tab's 3-D PCA/t-SNE/UMAP views.

Keras 3.15's own ``embeddings_freq`` is not used: it saves a ``.weights.h5`` file the
projector cannot read and names a checkpoint tensor that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy.typing as npt
import tensorflow as tf
from tensorboard.plugins import projector

from serving.tokenization import load_tokenizer
from training.logs import logger

ACTIVATIONS_RUN = "activations"
PROJECTOR_RUN = "projector"
CHECKPOINT_NAME = "embeddings"
ACTIVATION_SAMPLE = 64  # validation examples whose layer outputs are histogrammed


def safe_name(path: str) -> str:
    """A variable path as a file and checkpoint key: ``qa/memory_embedding_0/embeddings``
    -> ``qa_memory_embedding_0``."""
    path = path.removesuffix("/embeddings")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path)


def token_embeddings(model: keras.Model, vocabulary_size: int) -> dict[str, keras.Variable]:
    """The model's word-embedding matrices: ``Embedding`` weights with one row per token id.

    Found by weight (``.../embeddings`` of ``[vocabulary_size, width]``) so that embeddings
    inside nested models and custom layers (MiniLM's ``word_embeddings``) count too; position,
    token-type and hashed-bigram tables have another row count and are left out.
    """
    found: dict[str, keras.Variable] = {}
    for weight in model.weights:
        if weight.name == "embeddings" and tuple(weight.shape)[:1] == (vocabulary_size,):
            found.setdefault(safe_name(weight.path), weight)
    return found


def vocabulary(tokenizer_path: Path) -> list[str]:
    """The tokenizer's tokens ordered by id (id i is row i of an embedding matrix)."""
    tokenizer = load_tokenizer(tokenizer_path)
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    return [by_id.get(index, f"[id {index}]") for index in range(tokenizer.get_vocab_size())]


def metadata_line(token: str) -> str:
    """A token as one TSV line; tabs and newlines would break the projector's row count."""
    return re.sub(r"[\t\r\n]", " ", token) or " "


class EmbeddingProjector(keras.callbacks.Callback):  # type: ignore[misc]
    """Write the projector config and metadata once, and the embedding checkpoint per epoch.

    The checkpoint is overwritten (``max_to_keep=1``) so the projector shows the latest
    epoch (the restored best weights once EarlyStopping has run, as it ends training first).
    """

    def __init__(self, log_dir: Path, tokenizer_path: Path) -> None:
        super().__init__()
        self.log_dir = log_dir / PROJECTOR_RUN
        self.tokenizer_path = tokenizer_path
        self.embeddings: dict[str, keras.Variable] = {}
        self.variables: dict[str, tf.Variable] = {}
        self.manager: tf.train.CheckpointManager | None = None

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Find the embeddings; write metadata, config and an event file (so it is a run)."""
        tokens = vocabulary(self.tokenizer_path)
        embeddings = token_embeddings(self.model, len(tokens))
        if not embeddings:
            logger().info("projector: no token embedding of %d rows in the model", len(tokens))
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        config = projector.ProjectorConfig()
        for name, weight in embeddings.items():
            metadata = f"metadata_{name}.tsv"
            # One column: no header line (the projector reads a header only for 2+ columns).
            lines = "\n".join(metadata_line(token) for token in tokens) + "\n"
            (self.log_dir / metadata).write_text(lines, encoding="utf-8")
            entry = config.embeddings.add()
            entry.tensor_name = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
            entry.metadata_path = metadata
            self.variables[name] = tf.Variable(keras.ops.convert_to_numpy(weight), name=name)
        # model_checkpoint_path stays empty: the projector then finds the latest checkpoint
        # of this folder itself (a relative path would resolve against TensorBoard's cwd).
        projector.visualize_embeddings(str(self.log_dir), config)
        checkpoint = tf.train.Checkpoint(**self.variables)
        self.manager = tf.train.CheckpointManager(
            checkpoint, str(self.log_dir), max_to_keep=1, checkpoint_name=CHECKPOINT_NAME
        )
        writer = tf.summary.create_file_writer(str(self.log_dir))
        with writer.as_default():
            listing = ", ".join(f"{name} {tuple(embeddings[name].shape)}" for name in embeddings)
            tf.summary.text("embeddings", f"token embeddings: {listing}", step=0)
        writer.close()
        self.embeddings = embeddings
        self.save()

    def save(self) -> None:
        """Copy the current embedding values into the checkpoint."""
        if self.manager is None:
            return
        for name, weight in self.embeddings.items():
            self.variables[name].assign(keras.ops.convert_to_numpy(weight))
        self.manager.save()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Checkpoint the embeddings after each epoch."""
        self.save()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """Checkpoint the final (best, if restored) embeddings."""
        self.save()


def output_probe(model: keras.Model) -> keras.Model | None:
    """A model from the inputs to every top-level layer's single float output, or None.

    A nested model (the shared siamese encoder, MiniLM) is left out: Keras's ``output`` of
    it is its own inner graph's output, not one of its calls in this model. Its inner
    layers' weights still show in the weight histograms. A layer called several times
    gives the output of its first call.
    """
    outputs: dict[str, Any] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer | keras.Model):
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError, RuntimeError):
            continue
        if isinstance(output, keras.KerasTensor) and "float" in str(output.dtype):
            outputs[layer.name] = output
    if not outputs:
        return None
    try:
        return keras.Model(model.inputs, outputs, name="activation_probe")
    except ValueError as error:  # an output Keras cannot trace back to the inputs
        logger().warning("activation histograms skipped: %s", error)
        return None


class ActivationHistograms(keras.callbacks.Callback):  # type: ignore[misc]
    """Histogram each layer's output on a fixed validation sample, every ``freq`` epochs."""

    def __init__(
        self, log_dir: Path, sample: Mapping[str, npt.NDArray[Any]], freq: int = 1
    ) -> None:
        super().__init__()
        self.log_dir = log_dir / ACTIVATIONS_RUN
        self.sample = {key: value[:ACTIVATION_SAMPLE] for key, value in sample.items()}
        self.freq = freq
        self.probe: keras.Model | None = None
        self.writer: Any = None

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Build the probe (inference mode: dropout and noise off) and the writer."""
        self.probe = output_probe(self.model)
        if self.probe is None:
            logger().info("activation histograms: no single-output layer to probe")
            return
        self.writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Write ``<layer>/activations`` histograms for this epoch."""
        if self.probe is None or epoch % self.freq:
            return
        inputs = [self.sample[tensor.name] for tensor in self.probe.inputs]
        outputs = self.probe(inputs, training=False)
        with self.writer.as_default():
            for name, value in outputs.items():
                # convert_to_numpy: also densifies a SparseTensor (the profile TF-IDF rows).
                value = keras.ops.convert_to_numpy(value)
                tf.summary.histogram(f"{name}/activations", value, step=epoch)
        self.writer.flush()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """Close the event file."""
        if self.writer is not None:
            self.writer.close()


def tensorboard_callbacks(
    log_dir: Path,
    sample_inputs: Mapping[str, npt.NDArray[Any]],
    tokenizer_path: Path,
    histogram_freq: int = 1,
) -> list[keras.callbacks.Callback]:
    """Keras's TensorBoard callback with weight histograms, plus activations and projector.

    Args:
        log_dir: the run's ``tensorboard/`` folder.
        sample_inputs: validation inputs by input name (``[examples, length]`` int32 ids);
            the first 64 examples are probed.
        tokenizer_path: the run's ``tokenizer.json`` (the projector's row labels).
        histogram_freq: epochs between histograms.
    """
    return [
        keras.callbacks.TensorBoard(log_dir=str(log_dir), histogram_freq=histogram_freq),
        ActivationHistograms(log_dir, sample_inputs, freq=histogram_freq),
        EmbeddingProjector(log_dir, tokenizer_path),
    ]
