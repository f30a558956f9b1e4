"""Similarity training options: cached frozen blocks, per-layer learning rates, weight EMA."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from serving import contract
from training import minilm
from training.models.similarity import build_similarity_model, compile_similarity_model
from training.models.similarity_cache import cache_states, cached_inputs, cached_top_model
from training.models.similarity_optim import ScaledAdam, lr_multipliers, similarity_optimizer
from training.tasks.base import PreparedData
from training.tasks.similarity import SimilarityTask, similarity_spec

TWO_BLOCKS = minilm.MiniLMConfig(
    vocab_size=60,
    hidden_size=8,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=16,
    max_position_embeddings=32,
    dropout=0.0,
)


def _ids(seed: int, rows: int = 6, width: int = 9) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(1, 60, size=(rows, width)).astype(np.int32)
    ids[0, 4:] = contract.PAD_ID
    ids[1, 7:] = contract.PAD_ID
    return ids


def _model(trainable_layers: int = 1) -> keras.Model:
    hparams = {**SimilarityTask().hparams("default"), "trainable_layers": trainable_layers}
    encoder = minilm.build_encoder(TWO_BLOCKS)
    minilm.freeze_lower_layers(encoder, trainable_layers)
    return build_similarity_model(hparams, 60, encoder)


def test_split_encoder_rejects_a_split_outside_its_blocks():
    encoder = minilm.build_encoder(TWO_BLOCKS)
    for trainable in (0, 3):
        with pytest.raises(ValueError, match=r"1\.\.2"):
            minilm.split_encoder(encoder, trainable)


def test_cache_stores_each_distinct_sentence_once_and_padding_as_row_0():
    bottom, _ = minilm.split_encoder(minilm.build_encoder(TWO_BLOCKS), 1)
    left = _ids(1)
    # Two sentences repeated in a narrower matrix: 6 + 3 distinct sentences in all.
    right = np.concatenate([left[:2, :7], _ids(2, rows=3, width=7)])
    table, (left_rows, right_rows) = cache_states(bottom, [left, right], batch_size=2)
    tokens = np.count_nonzero(left) + np.count_nonzero(right[2:])
    assert table.shape == (1 + tokens, 8)
    assert left_rows.shape == left.shape and right_rows.shape == right.shape
    np.testing.assert_array_equal(right_rows[:2], left_rows[:2, :7])
    np.testing.assert_array_equal(left_rows == 0, left == contract.PAD_ID)
    np.testing.assert_array_equal(table[0], 0.0)


@pytest.mark.parametrize("trainable_layers", [1, 2])
def test_cached_model_scores_as_the_whole_model(trainable_layers):
    model = _model(trainable_layers)
    inputs = {"left_ids": _ids(3), "right_ids": _ids(4, width=7)}
    table, (rows,) = cached_inputs(model, [inputs], trainable_layers)
    cached = cached_top_model(model, table, trainable_layers)
    whole = model.predict(inputs, verbose=0)["score"]
    np.testing.assert_allclose(cached.predict(rows, verbose=0)["score"], whole, atol=1e-5)
    # The table is not a weight: checkpoints and restored best weights leave it out.
    assert all(tuple(weight.shape) != table.shape for weight in cached.weights)


def test_fitting_the_cached_model_trains_the_top_block_of_the_whole_model_only():
    model = _model(1)
    data = PreparedData(
        train_inputs={"left_ids": _ids(5), "right_ids": _ids(6)},
        train_targets={"score": np.linspace(0, 1, 6, dtype=np.float32)[:, None]},
        val_inputs={"left_ids": _ids(7), "right_ids": _ids(8)},
        val_targets={"score": np.full((6, 1), 0.5, np.float32)},
        tokenizer_path=minilm.package_dir() / minilm.TOKENIZER_FILE,
        spec=similarity_spec(16, 60),
    )
    hparams = {**SimilarityTask().hparams("default"), "cache_frozen": True, "trainable_layers": 1}
    fitted, cached = SimilarityTask().fit_target(model, data, hparams)
    assert fitted is not model and cached.train_inputs["left_ids"].shape == (6, 9)
    before = {weight.path: keras.ops.convert_to_numpy(weight) for weight in model.weights}
    fitted.fit(cached.train_inputs, cached.train_targets, epochs=2, verbose=0)
    moved = {
        path for path, value in before.items() if not np.array_equal(value, _weight(model, path))
    }
    assert any(path.startswith("layer_1_") for path in moved)
    assert not any(path.startswith(("layer_0_", "embeddings")) for path in moved)
    # Without the option the whole model is what gets fitted.
    whole, same = SimilarityTask().fit_target(model, data, {**hparams, "cache_frozen": False})
    assert whole is model and same is data


def _weight(model: keras.Model, path: str) -> np.ndarray:
    return next(
        keras.ops.convert_to_numpy(weight) for weight in model.weights if weight.path == path
    )


def test_layer_decay_and_head_factor_map_to_variable_paths():
    factors = lr_multipliers({"layer_lr_decay": 0.5, "head_lr_multiplier": 100.0}, blocks=3)
    optimizer = ScaledAdam(factors, learning_rate=1e-3)
    assert optimizer.factor("layer_2_output/kernel") == 1.0
    assert optimizer.factor("minilm_encoder/layer_0_attention/query/kernel") == 0.25
    assert optimizer.factor("score/scale") == 100.0
    assert optimizer.factor("embeddings/word_embeddings/embeddings") == 1.0
    assert lr_multipliers({}) == {}


def test_scaled_adam_steps_each_variable_by_its_factor():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(3, name="layer_0_dense")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="layer_1_dense")(hidden))
    optimizer = ScaledAdam(lr_multipliers({"layer_lr_decay": 0.25}, blocks=2), learning_rate=0.01)
    model.compile(optimizer=optimizer, loss="mse")
    before = [keras.ops.convert_to_numpy(weight) for weight in model.trainable_weights]
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    model.fit(x, np.ones((8, 1), np.float32), epochs=1, batch_size=8, verbose=0)
    steps = [
        np.abs(keras.ops.convert_to_numpy(w) - b).max()
        for w, b in zip(model.trainable_weights, before, strict=True)
    ]
    # Adam's first step moves each weight by about its learning rate.
    np.testing.assert_allclose(steps[0], 0.0025, rtol=0.05)
    np.testing.assert_allclose(steps[2], 0.01, rtol=0.05)


def test_ema_is_copied_in_at_each_epoch_end():
    optimizer = similarity_optimizer({"ema_momentum": 0.9}, 1e-3, steps_per_epoch=7)
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9
    assert optimizer.ema_overwrite_frequency == 7
    assert not similarity_optimizer({}, 1e-3).use_ema
    hparams = {**SimilarityTask().hparams("default"), "ema_momentum": 0.9, "epochs": 2}
    model = compile_similarity_model(_model(), hparams, train_steps=10)
    assert model.optimizer.ema_overwrite_frequency == 5
