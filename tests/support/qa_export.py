"""Export a fitted qa model as the pipeline does and load its served signature (tests only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from serving import contract
from training.export import export_for_serving
from training.models.qa import EVIDENCE_OUTPUT
from training.tasks.base import PreparedData


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
