"""The profile TF-IDF model's sparse inference path gives the dense path's outputs."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from serving import contract
from tests.support.profile_task import CapturingProfileTask
from training.models.profile import TfIdfBag, build_profile_model, set_tfidf_weights
from training.models.profile_sparse import sparse_tfidf
from training.tasks.base import RunSettings
from training.tasks.profile import ProfileTask

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "blogs"
VOCAB = 300
TOLERANCE = 1e-5


def _ids(rng: np.random.Generator) -> np.ndarray:
    """Rows of different lengths (Zipf-like repeats), one of padding only, the largest id."""
    ids = np.minimum(rng.zipf(1.3, size=(5, 60)), VOCAB - 1).astype(np.int32)
    ids[1, 25:] = contract.PAD_ID
    ids[2, :] = contract.PAD_ID
    ids[3, 3] = VOCAB - 1
    ids[4, 1:] = 7  # one term repeated: a count far above 1
    return ids


def test_sparse_rows_are_the_dense_rows():
    rng = np.random.default_rng(0)
    ids = _ids(rng)
    layer = TfIdfBag(VOCAB)
    layer.build(ids.shape)
    layer.set_idf(rng.integers(0, 20, VOCAB), 20)
    dense = layer(ids, training=True).numpy()
    sparse = layer(ids, training=False)
    assert isinstance(sparse, tf.SparseTensor) and isinstance(layer(ids), tf.SparseTensor)
    np.testing.assert_allclose(tf.sparse.to_dense(sparse).numpy(), dense, atol=1e-7)
    assert np.all(dense[2] == 0) and not np.isnan(dense).any()
    np.testing.assert_allclose(np.linalg.norm(dense[[0, 1, 3, 4]], axis=1), 1.0, rtol=1e-6)
    # One entry per distinct id of each row, in row-major order (what sparse ops expect).
    indices = sparse.indices.numpy()
    assert len(indices) == sum(len(np.unique(row)) for row in ids)
    assert [tuple(pair) for pair in indices] == sorted(tuple(pair) for pair in indices)


def test_an_empty_row_and_an_id_outside_the_table():
    idf = tf.ones([VOCAB])
    empty = sparse_tfidf(np.zeros((2, 0), np.int32), idf, VOCAB)
    assert tf.sparse.to_dense(empty).shape == (2, VOCAB)
    with pytest.raises(tf.errors.InvalidArgumentError):
        sparse_tfidf(np.array([[VOCAB]], np.int32), idf, VOCAB)


def _model(buckets: int, gender_nb: str, age_nb_units: int = 0) -> keras.Model:
    """A tiny tfidf model with trained-like IDF, ratio and random weights; dropout 0, so a
    ``training=True`` call is the dense path with nothing else changed."""
    hparams = {
        **ProfileTask().hparams("tiny"),
        "arch": "tfidf",
        "dropout": 0.0,
        "bigram_buckets": buckets,
        "gender_nb": gender_nb,
        "gender_nb_units": 4,
        "age_nb_units": age_nb_units,
    }
    model = build_profile_model(hparams, VOCAB, 30.0)
    rng = np.random.default_rng(1)
    training_ids = np.minimum(rng.zipf(1.3, size=(40, 50)), VOCAB - 1).astype(np.int32)
    gender = rng.integers(0, 2, 40).astype(np.float32)
    set_tfidf_weights(model, training_ids, gender, 5.0, rng.uniform(13, 48, 40))
    for weight in model.trainable_weights:
        weight.assign(rng.normal(0.0, 0.5, weight.shape).astype(np.float32))
    return model


@pytest.mark.parametrize("buckets", [0, 97])
@pytest.mark.parametrize(
    ("gender_nb", "age_nb_units"), [("none", 0), ("linear", 0), ("tower", 0), ("tower", 3)]
)
def test_inference_outputs_equal_the_dense_path(buckets, gender_nb, age_nb_units):
    model = _model(buckets, gender_nb, age_nb_units)
    ids = _ids(np.random.default_rng(2))
    for batch in (ids, ids[:1], ids[2:3], ids[3:5, :30]):
        dense = model({"post_ids": batch}, training=True)
        predicted = model.predict({"post_ids": batch}, verbose=0)
        for name, value in model({"post_ids": batch}).items():
            assert not np.isnan(value.numpy()).any()
            assert np.abs(value.numpy() - dense[name].numpy()).max() <= TOLERANCE
            assert np.abs(predicted[name] - dense[name].numpy()).max() <= TOLERANCE


def test_no_xla_for_the_unique_of_the_sparse_path():
    # XLA cannot compile UniqueWithCounts: with XLA, predict and evaluate would fail on GPUs.
    model = _model(97, "tower")
    with pytest.warns(UserWarning, match="jit_compile"):
        model.compile(loss="mse", jit_compile=True)
    assert model.jit_compile is False


def _graph_ops(function) -> set[str]:
    graph = function.graph.as_graph_def()
    return {node.op for node in graph.node} | {
        node.op for library in graph.library.function for node in library.node_def
    }


def test_the_export_serves_the_sparse_path_with_the_dense_outputs(tmp_path):
    from training.pipeline import train_task

    keras.utils.set_random_seed(1)
    settings = RunSettings(
        data_dir=FIXTURE_DIR, model_repo=tmp_path / "repo", run_dir=tmp_path / "run", preset="tiny"
    )
    task = CapturingProfileTask()
    overrides = {"dropout": 0.0, "gender_nb": "tower", "gender_nb_units": 4}
    version = train_task(task, settings, overrides)
    serve = tf.saved_model.load(str(version)).signatures[contract.SIGNATURE_NAME]
    ops = _graph_ops(serve)
    assert "UniqueWithCounts" in ops and not ops & {"Bincount", "DenseBincount"}
    ids = task.data.val_inputs["post_ids"].copy()
    ids[-1] = contract.PAD_ID  # a row of padding only
    for batch in (ids, ids[:1], ids[-1:]):
        served = serve(post_ids=tf.constant(batch))
        dense = task.model({"post_ids": batch}, training=True)
        for name, value in served.items():
            expected = dense[name].numpy().reshape(value.shape)
            assert np.abs(value.numpy() - expected).max() <= TOLERANCE, name
    # The activation histograms still read the (now sparse) TF-IDF layers' outputs.
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard" / "activations"))
    events.Reload()
    assert {"word_tfidf/activations", "gender_nb/activations"} <= set(events.Tags()["tensors"])
