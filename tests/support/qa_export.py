"""Export a fitted qa model as the pipeline does and load its served signature (tests only);
the tiny memnet trained on qa1 until its attention finds the supporting sentence."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from serving import contract
from training.export import export_for_serving
from training.models.qa import EVIDENCE_OUTPUT
from training.tasks.base import PreparedData, RunSettings

BABI_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "babi"
QA1_FIXTURE = BABI_FIXTURES / "qa1_single-supporting-fact_train.txt"


def export_qa(model: keras.Model, data: PreparedData, repo: Path) -> tuple[Path, Any]:
    """The exported version folder and its ``serving_default`` signature.

    Checks the served outputs are the answer and the evidence weights (AssertionError).
    """
    version = export_for_serving(
        model, data.spec, {contract.TOKENIZER_FILE: data.tokenizer_path}, name="qa", repo=repo
    )
    signature = tf.saved_model.load(str(version)).signatures[contract.SIGNATURE_NAME]
    assert set(signature.structured_outputs) == {"answer_probs", EVIDENCE_OUTPUT}
    return version, signature


def train_qa_evidence(root: Path) -> tuple[Path, Path]:
    """Train the tiny memnet on the qa1 fixture alone (60 epochs, evidence loss weight 5, no
    time noise, no validation) and export it to ``root/repo``: (the data folder, the version).

    Deterministic enough that its served weights point at each example's supporting sentence.
    """
    from training.tasks.qa import QaTask
    from training.tasks.qa_presets import PRESETS

    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    shutil.copy(QA1_FIXTURE, data_dir)
    settings = RunSettings(data_dir=data_dir, model_repo=root / "repo", run_dir=root / "run")
    hparams = {**PRESETS["tiny"], "validation_fraction": 0.0, "evidence_loss_weight": 5.0}
    hparams["time_noise"] = 0.0
    task = QaTask()
    data = task.prepare(settings, hparams)
    model = task.build_model(hparams, data)
    model.fit(data.train_inputs, data.train_targets, epochs=60, batch_size=8, verbose=0)
    version, _ = export_qa(model, data, settings.model_repo)
    return data_dir, version
