"""A tiny qa training run leaves histograms, the embedding projector and the architecture."""

import logging
import re
import shutil
from pathlib import Path

import keras_tuner
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import projector

import training.architecture
from serving.tokenization import load_tokenizer
from training.architecture import PLOT_FILE, SUMMARY_FILE, architecture_assets
from training.models.similarity import build_similarity_model
from training.tuning import write_hparams

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run_dir(qa_cli_run):
    """The run folder of the session's tiny ``train qa`` run (conftest.py)."""
    (run,) = (qa_cli_run / "runs").iterdir()
    return run


def summaries(folder: Path) -> dict[str, str]:
    """Tag -> plugin name of every summary in the event files of one folder."""
    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    return {
        tag: events.SummaryMetadata(tag).plugin_data.plugin_name for tag in events.Tags()["tensors"]
    }


def test_weight_histograms_are_logged(run_dir):
    tags = summaries(run_dir / "tensorboard" / "train")
    histograms = {tag for tag, plugin in tags.items() if plugin == "histograms"}
    assert "memory_embedding_0/embeddings/histogram" in histograms
    assert any(tag.startswith("answer_probs/") for tag in histograms)
    assert tags["epoch_loss"] == "scalars"


def test_activation_histograms_are_logged(run_dir):
    tags = summaries(run_dir / "tensorboard" / "activations")
    assert tags["answer_probs/activations"] == "histograms"
    assert tags["question_bag/activations"] == "histograms"


def test_projector_shows_every_word_embedding_with_the_vocabulary(run_dir):
    folder = run_dir / "tensorboard" / "projector"
    config = text_format.Parse(
        (folder / "projector_config.pbtxt").read_text(), projector.ProjectorConfig()
    )
    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
    vocabulary = tokenizer.get_vocab_size()
    names = {entry.tensor_name.split("/")[0] for entry in config.embeddings}
    assert names == {"memory_embedding_0", "memory_embedding_1", "memory_embedding_2"}
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(folder)))
    for entry in config.embeddings:
        rows = (folder / entry.metadata_path).read_text(encoding="utf-8").splitlines()
        assert len(rows) == vocabulary
        assert rows[tokenizer.token_to_id("kitchen")] == "kitchen"
        assert reader.get_variable_to_shape_map()[entry.tensor_name] == [vocabulary, 16]
    # The projector run is a TensorBoard run (it has an event file), so `--logdir runs` finds it.
    assert summaries(folder)["embeddings"] == "text"


def test_run_writes_summary_and_plot(run_dir):
    summary = (run_dir / SUMMARY_FILE).read_text(encoding="utf-8")
    assert 'Model: "qa"' in summary
    assert "memory_embedding_0 (Embedding)" in summary
    assert "Total params" in summary
    if training.architecture.plotting_unavailable() is None:
        assert (run_dir / PLOT_FILE).read_bytes().startswith(PNG_MAGIC)


def test_siamese_summary_and_plot_show_one_shared_encoder(tmp_path):
    model = build_similarity_model(
        {"arch": "classic", "embedding_dim": 8, "conv_filters": 8, "hidden_units": 8, "dropout": 0},
        50,
    )
    assets = architecture_assets(model, tmp_path)
    summary = assets[SUMMARY_FILE].read_text(encoding="utf-8")
    # One encoder row, called on both inputs, with its own layers listed below it.
    assert summary.count("classic_encoder (Functional)") == 1
    assert "left_ids[0][0], right_ids[0][0]" in summary
    # Keras numbers layer names per process (embedding_3 after other tests built some).
    assert re.search(r"└ embedding(_\d+)? \(Embedding\)", summary), summary
    if training.architecture.plotting_unavailable() is not None:
        pytest.skip("no Graphviz/pydot here: the plot is covered by the degradation test")
    assert assets[PLOT_FILE].read_bytes().startswith(PNG_MAGIC)


def test_without_graphviz_only_the_plot_is_skipped_with_one_log_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    model = build_similarity_model(
        {"arch": "classic", "embedding_dim": 4, "conv_filters": 4, "hidden_units": 4, "dropout": 0},
        20,
    )
    with caplog.at_level(logging.WARNING, logger="training"):
        assets = architecture_assets(model, tmp_path)
    assert set(assets) == {SUMMARY_FILE}
    assert (tmp_path / SUMMARY_FILE).is_file()
    assert not (tmp_path / PLOT_FILE).exists()
    (line,) = [record.getMessage() for record in caplog.records]
    assert "model.png skipped" in line
    assert "Graphviz" in line


def test_tune_trials_become_hparams_sessions_with_their_objective(tmp_path):
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=3, seed=1
    )
    oracle._set_project_dir(str(tmp_path), "tuner")  # what a Tuner does for its oracle
    space = keras_tuner.HyperParameters()
    space.Choice("embedding_dim", [16, 32])
    space.Float("dropout", 0.0, 0.3)
    oracle.update_space(space)
    scores = {}
    for index in range(3):
        trial = oracle.create_trial("tuner0")
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.25 * index})
        trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED  # as the tuner does
        oracle.end_trial(trial)
        scores[trial.trial_id] = 0.25 * index
    write_hparams(oracle, tmp_path / "tensorboard")

    experiment = EventAccumulator(str(tmp_path / "tensorboard"), {"tensors": 0})
    experiment.Reload()
    assert experiment.Tags()["tensors"] == ["_hparams_/experiment"]
    for trial_id, score in scores.items():
        session = EventAccumulator(str(tmp_path / "tensorboard" / f"trial_{trial_id}"))
        session.Reload()
        assert "_hparams_/session_start_info" in session.Tags()["tensors"]
        (objective,) = session.Tensors("val_accuracy")
        assert float(tf.make_ndarray(objective.tensor_proto)) == pytest.approx(score)
