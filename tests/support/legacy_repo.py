"""Turn a spec'd version folder into one exported before the serving spec (for legacy tests).

Writes ``preprocessing.json`` and ``labels.json`` in the layout documented in
:mod:`serving.contract` (what training wrote before ``serving_spec.json``) and removes the spec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving import contract
from serving.spec import SPEC_FILE, BinaryHead, CategoricalHead, ServingSpec, load_spec


def make_legacy(version_dir: Path, model: str) -> ServingSpec:
    """Rewrite ``version_dir/assets.extra`` in the legacy layout; return the removed spec."""
    folder = version_dir / contract.ASSETS_DIR
    spec = load_spec(folder / SPEC_FILE)
    preprocessing: dict[str, Any] = {
        "inputs": {
            item.tensor: {"max_length": item.max_tokens, "truncation": item.truncation}
            for item in spec.inputs
        },
        "pad_id": spec.pad_id,
    }
    for item in spec.inputs:
        if item.kind == "texts":
            preprocessing["post_separator"] = item.separator
            preprocessing["max_chars"] = item.max_joined_chars
    heads = {head.field: head for head in spec.heads}
    labels: dict[str, Any]
    if model == "qa":
        answer = heads["answer"]
        assert isinstance(answer, CategoricalHead)
        labels = {"answers": answer.labels}
    elif model == "profile":
        income, gender = heads["income_group"], heads["gender"]
        assert isinstance(income, CategoricalHead) and isinstance(gender, BinaryHead)
        labels = {
            "income_groups": [
                {"group": index, "label": label, "rule": f"rule {index}"}
                for index, label in enumerate(income.labels)
            ],
            "income_is_proxy": True,
            "income_note": income.note or "a proxy",
            "gender": {"labels": list(gender.labels), "positive": gender.labels[1]},
            "age": {"unit": "years"},
        }
    else:
        labels = {"score": {"range": [0.0, 1.0], "meaning": "1 = same meaning"}}
    (folder / contract.PREPROCESSING_FILE).write_text(json.dumps(preprocessing))
    (folder / contract.LABELS_FILE).write_text(json.dumps(labels))
    (folder / SPEC_FILE).unlink()
    return spec
