"""End-to-end CLI runs on the bAbI fixtures: train (tiny preset), tune, fetch."""

import csv
import hashlib
import io
import json
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import training.fetch
from serving import contract
from serving.spec import SPEC_FILE, CategoricalHead, SegmentWeightsHead, TextInput, load_spec
from serving.tokenization import encode_texts, load_tokenizer
from training.cli import main
from training.data.babi import read_babi, repeat_tasks, split_by_task
from training.fetch import DatasetFile, FetchError, Source, fetch_all, verify_all
from training.tasks.base import RunSettings
from training.tasks.qa import QaTask
from training.tasks.qa_presets import PRESETS as QA_PRESETS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "babi"


@pytest.fixture
def trained(qa_cli_run):
    """The session's tiny ``train qa`` run (conftest.py), shared with test_tensorboard_logs."""
    return qa_cli_run


def test_train_exports_a_version_with_the_contract_signature(trained):
    version = trained / "repo" / "qa" / "1"
    loaded = tf.saved_model.load(str(version))
    signature = loaded.signatures[contract.SIGNATURE_NAME]
    inputs = signature.structured_input_signature[1]
    assert set(inputs) == {"article_ids", "question_ids"}
    assert all(spec.dtype == tf.int32 for spec in inputs.values())
    assert set(signature.structured_outputs) == {"answer_probs", "sentence_weights"}
    assets = version / contract.ASSETS_DIR
    spec = load_spec(assets / SPEC_FILE)
    answer, evidence = spec.heads
    assert isinstance(evidence, SegmentWeightsHead) and evidence.output == "sentence_weights"
    assert isinstance(answer, CategoricalHead) and answer.output == "answer_probs"
    assert "football,apple" in answer.labels
    assert not (assets / contract.LABELS_FILE).exists()
    card = json.loads((assets / contract.MODEL_CARD_FILE).read_text())
    assert card["data"]["bad_lines"] == 3
    assert set(card["validation_metrics"]["per_task_accuracy"]) <= {"qa1", "qa8", "qa19"}
    article_input, question_input = spec.inputs
    assert isinstance(article_input, TextInput) and article_input.field == "article"
    assert article_input.tensor == "article_ids" and article_input.truncation == "left"
    assert question_input.field == "question" and question_input.tensor == "question_ids"
    assert (
        article_input.vocab_size
        == load_tokenizer(assets / contract.TOKENIZER_FILE).get_vocab_size()
    )
    # a story longer than the model's memory and a one-word question still give probabilities
    tokenizer = load_tokenizer(assets / contract.TOKENIZER_FILE)
    article = encode_texts(tokenizer, ["Mary went to the kitchen. " * 40], 400, "left")
    question = encode_texts(tokenizer, ["Where"], 16)
    probs = signature(article_ids=tf.constant(article), question_ids=tf.constant(question))
    assert np.isclose(float(tf.reduce_sum(probs["answer_probs"])), 1.0, atol=1e-4)


def test_callbacks_leave_csv_log_checkpoint_and_tensorboard(trained):
    (run_dir,) = (trained / "runs").iterdir()
    with (run_dir / "training_log.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert rows and "val_loss" in rows[0]
    assert (run_dir / "best.weights.h5").is_file()
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))


def test_training_ids_equal_ids_from_the_exported_tokenizer(tmp_path, trained):
    task = QaTask()
    hparams = task.hparams("tiny")
    settings = RunSettings(
        data_dir=FIXTURES, model_repo=tmp_path / "repo", run_dir=tmp_path / "run"
    )
    data = task.prepare(settings, hparams)
    exported = trained / "repo" / "qa" / "1" / contract.ASSETS_DIR / contract.TOKENIZER_FILE
    assert exported.read_bytes() == data.tokenizer_path.read_bytes()
    tokenizer = load_tokenizer(exported)
    train, _ = split_by_task(
        read_babi(FIXTURES).examples, hparams["validation_fraction"], settings.seed
    )
    train = repeat_tasks(train, hparams["task_repeats"])  # the rows fitted, oversampled
    article, question = data.spec.input("article"), data.spec.input("question")
    served_articles = encode_texts(
        tokenizer, [e.article for e in train], article.max_tokens, "left"
    )
    served_questions = encode_texts(
        tokenizer, [e.question for e in train], question.max_tokens, "right"
    )
    np.testing.assert_array_equal(data.train_inputs["article_ids"], served_articles)
    np.testing.assert_array_equal(data.train_inputs["question_ids"], served_questions)
    assert (served_articles == tokenizer.token_to_id("[UNK]")).sum() == 0


def test_tune_records_every_trial(tmp_path, capsys):
    argv = ["tune", "qa", "--trials", "3", "--preset", "tiny", "--data-dir", str(FIXTURES)]
    argv += ["--runs-dir", str(tmp_path / "runs"), "--epochs", "1"]
    assert main(argv) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    trials = json.loads((run_dir / "trials.json").read_text())
    assert len(trials) == 3
    assert all("embedding_dim" in trial for trial in trials)
    # A trial whose sampled hops differ from the preset's still gets targets for its own
    # hop outputs (the data is prepared once per search): every trial completes.
    assert {trial["hops"] for trial in trials} - {QA_PRESETS["tiny"]["hops"]}
    assert {trial["status"] for trial in trials} == {"COMPLETED"}
    with (run_dir / "trials.csv").open() as stream:
        assert len(list(csv.DictReader(stream))) == 3
    assert "best hyperparameters" in capsys.readouterr().out


def test_fetch_fails_cleanly_without_network(tmp_path, capsys, monkeypatch):
    def no_network(url, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(training.fetch, "open_url", no_network)
    code = main(["fetch", "--data-dir", str(tmp_path / "data"), "--timeout", "0.5"])
    assert code == 2
    error = capsys.readouterr().err
    assert "could not download babi" in error
    assert "--data-dir" in error


def test_fetch_verify_only_reports_missing_files(tmp_path, capsys):
    assert main(["fetch", "--verify-only", "--data-dir", str(tmp_path)]) == 1
    assert "is missing" in capsys.readouterr().err


def test_fetch_unpacks_a_tar_and_checks_it_with_an_injected_opener(tmp_path):
    content = b"1 Mary went home.\n2 Where is Mary? \thome\t1\n"
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as bundle:
        info = tarfile.TarInfo("tasks/en/qa1_home_train.txt")
        info.size = len(content)
        bundle.addfile(info, io.BytesIO(content))
    entry = DatasetFile(
        path="babi/qa1_home_train.txt",
        member="tasks/en/qa1_home_train.txt",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
    source = Source(name="babi", url="http://example.invalid/babi.tgz", kind="tar", files=(entry,))
    requested = []

    def serve(url, timeout):
        requested.append((url, timeout))
        return io.BytesIO(archive.getvalue())

    assert verify_all(tmp_path, [source])[0].endswith("is missing")
    fetch_all(tmp_path, timeout=0.1, opener=serve, sources=[source])
    assert requested == [("http://example.invalid/babi.tgz", 0.1)]
    assert verify_all(tmp_path, [source]) == []
    (tmp_path / entry.path).write_bytes(content.upper())
    assert "sha256" in verify_all(tmp_path, [source])[0]

    def refuse(url, timeout):
        raise OSError(f"no route to {url}")

    with pytest.raises(FetchError, match="no route"):
        fetch_all(tmp_path, timeout=0.1, opener=refuse, sources=[source])


def test_shared_datasets_match_the_manifest(datasets_dir):
    if not datasets_dir.is_dir():
        pytest.skip("no shared datasets here")
    assert verify_all(datasets_dir) == []
