"""The nli model: inputs/outputs, one shared encoder, asymmetric entailment, cached vectors,
and a tiny-preset train + export run through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from serving.spec import SPEC_FILE, load_spec
from training import minilm
from training.models.nli import build_nli_model, compile_nli_model, pair_vectors
from training.tasks.base import RunSettings
from training.tasks.nli import NliTask

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TINY_MINILM = minilm.MiniLMConfig(
    vocab_size=60,
    hidden_size=8,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=16,
    max_position_embeddings=32,
)


def _ids(seed: int, rows: int = 4, width: int = 9) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(1, 60, size=(rows, width)).astype(np.int32)
    ids[0, 5:] = contract.PAD_ID
    return ids


def _model():
    hparams = NliTask().hparams("tiny")
    model, encoder, heads = build_nli_model(hparams, minilm.build_encoder(TINY_MINILM))
    return compile_nli_model(model, hparams), encoder, heads


def test_inputs_outputs_and_one_shared_encoder():
    model, encoder, heads = _model()
    assert set(model.input) == {"premise_ids", "hypothesis_ids"}
    assert set(model.output) == {"entailment_probs", "relatedness"}
    # One encoder instance, called on both inputs (siamese), and one heads block.
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert nested == [encoder, heads] or nested == [heads, encoder]
    assert len(encoder._inbound_nodes) == 2
    outputs = model.predict({"premise_ids": _ids(1), "hypothesis_ids": _ids(2, width=6)}, verbose=0)
    probs, relatedness = outputs["entailment_probs"], outputs["relatedness"]
    assert probs.shape == (4, 3) and relatedness.shape == (4, 1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all((relatedness >= 1.0) & (relatedness <= 5.0))


def test_entailment_depends_on_order_and_relatedness_does_not():
    model, _, heads = _model()
    # Non-zero head weights everywhere so that order could only cancel out by symmetry.
    for layer in heads.layers:
        layer.set_weights(
            [np.random.default_rng(3).normal(size=w.shape) for w in layer.get_weights()]
        )
    first, second = _ids(3), _ids(4, width=7)
    forward = model.predict({"premise_ids": first, "hypothesis_ids": second}, verbose=0)
    backward = model.predict({"premise_ids": second, "hypothesis_ids": first}, verbose=0)
    assert not np.allclose(forward["entailment_probs"], backward["entailment_probs"])
    np.testing.assert_allclose(forward["relatedness"], backward["relatedness"], rtol=1e-5)


def test_cached_vectors_are_the_encoders_and_feed_the_same_heads():
    model, encoder, heads = _model()
    premise, hypothesis = _ids(5), _ids(6, width=6)
    hypothesis[2] = premise[2, :6]  # a repeated sentence is encoded once, same vector
    hypothesis[2, 5:] = contract.PAD_ID
    batch = {"premise_ids": premise, "hypothesis_ids": hypothesis}
    (vectors,) = pair_vectors(encoder, [batch], ("premise_ids", "hypothesis_ids"), batch_size=3)
    expected = encoder.predict(hypothesis, verbose=0)
    np.testing.assert_allclose(vectors["hypothesis_vector"], expected, atol=1e-5)
    from_vectors = heads.predict(vectors, verbose=0)
    from_ids = model.predict(batch, verbose=0)
    for name in ("entailment_probs", "relatedness"):
        np.testing.assert_allclose(from_vectors[name], from_ids[name], atol=1e-5)


def test_unknown_arch_is_rejected():
    with pytest.raises(ValueError, match="unknown nli arch"):
        build_nli_model({**NliTask().hparams("tiny"), "arch": "lstm"})


def test_tiny_run_trains_the_heads_and_exports_the_spec(tmp_path):
    from training.pipeline import train_task

    settings = RunSettings(
        data_dir=FIXTURES, model_repo=tmp_path / "repo", run_dir=tmp_path / "run", preset="tiny"
    )
    task = NliTask()
    version = train_task(task, settings, {})
    assets = version / contract.ASSETS_DIR
    spec = load_spec(assets / SPEC_FILE)
    assert [item.tensor for item in spec.inputs] == ["premise_ids", "hypothesis_ids"]
    assert [head.field for head in spec.heads] == ["entailment", "relatedness"]
    card = json.loads((assets / contract.MODEL_CARD_FILE).read_text())
    assert card["data"]["bad_lines"] == 4
    assert card["data"]["validation_pairs"] == 3  # one per label
    metrics = card["validation_metrics"]
    assert 0.0 <= metrics["entailment_accuracy"] <= 1.0
    assert np.sum(metrics["confusion_matrix"]["counts"]) == 3
    served = tf.saved_model.load(str(version)).signatures[contract.SIGNATURE_NAME]
    outputs = served(premise_ids=tf.constant(_ids(7) + 1000), hypothesis_ids=tf.constant(_ids(8)))
    assert outputs["entailment_probs"].shape == (4, 3)
    assert outputs["relatedness"].shape[0] == 4
    assert (tmp_path / "run" / "training_log.csv").exists()  # the pipeline's callbacks ran
