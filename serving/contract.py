"""The export contract shared by training (writer) and serving (reader).

A model version lives in ``model_repo/<name>/<version>/`` as a TensorFlow SavedModel whose
``serving_default`` signature has the inputs and outputs named here, plus the files in
``assets.extra/`` that the gateway needs to turn text into ids and tensors into answers.
This module has no third-party imports so that every process can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SIGNATURE_NAME = "serving_default"
ASSETS_DIR = "assets.extra"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
MODEL_CARD_FILE = "model_card.json"
PREPROCESSING_FILE = "preprocessing.json"
WARMUP_FILE = "tf_serving_warmup_requests"
MODELS_CONFIG_FILE = "models.config"
MONITORING_CONFIG_FILE = "monitoring.config"
BATCHING_CONFIG_FILE = "batching_parameters.txt"
PAD_ID = 0


@dataclass(frozen=True)
class Signature:
    """Names of a model's signature inputs (all int32 ``[batch, length]``) and outputs."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


SIGNATURES: dict[str, Signature] = {
    "qa": Signature(inputs=("article_ids", "question_ids"), outputs=("answer_probs",)),
    "profile": Signature(inputs=("post_ids",), outputs=("age", "income_probs", "gender_prob")),
    "similarity": Signature(inputs=("left_ids", "right_ids"), outputs=("score",)),
}
MODEL_NAMES: tuple[str, ...] = tuple(SIGNATURES)

# Shapes of the outputs, per example: answer_probs [n_answers], age [], income_probs [10],
# gender_prob [] (probability of labels.json "gender"["positive"]), score [] in [0, 1].
INCOME_GROUPS = 10

# preprocessing.json, written by training and read by the gateway:
# {
#   "inputs": {"<input name>": {"max_length": int, "truncation": "left" | "right"}},
#   "pad_id": 0,
#   "post_separator": "[SEP]"          # profile only: joins a person's posts
#   "lowercase": true                  # informative; the tokenizer.json normalizer does it
# }
#
# labels.json:
#   qa:         {"answers": [str, ...]}                     index i <-> answer_probs[:, i]
#   profile:    {"income_groups": [{"group": int, "label": str, "rule": str}, ...],
#                "income_is_proxy": bool, "income_note": str,
#                "gender": {"labels": ["female", "male"], "positive": "male"},
#                "age": {"unit": "years"}}
#   similarity: {"score": {"range": [0.0, 1.0], "meaning": str}}


def version_numbers(model_dir: Path) -> list[int]:
    """The integer version folders in a model's folder, ascending (TF Serving's layout)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(child.name) for child in model_dir.iterdir() if child.name.isdigit())
