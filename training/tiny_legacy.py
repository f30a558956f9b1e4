"""preprocessing.json and labels.json for the tiny built-in models (transition only).

The gateway on main still reads these two files; the serving spec replaces them. The tiny
repo keeps them, derived from the spec, until the gateway reads ``serving_spec.json``; then
this module and its use in ``training/tiny.py`` go. Training no longer writes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving import contract
from serving.spec import BinaryHead, CategoricalHead, RegressionHead, ScoreHead, ServingSpec


def legacy_assets(name: str, spec: ServingSpec, workdir: Path) -> dict[str, Path]:
    """Write the two legacy files of a built-in model into ``workdir/name``; return them."""
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        contract.PREPROCESSING_FILE: _preprocessing(spec),
        contract.LABELS_FILE: _labels(name, spec),
    }
    for file, payload in files.items():
        (folder / file).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return {file: folder / file for file in files}


def _preprocessing(spec: ServingSpec) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "inputs": {
            item.tensor: {"max_length": item.max_tokens, "truncation": item.truncation}
            for item in spec.inputs
        },
        "pad_id": spec.pad_id,
        "lowercase": True,
    }
    for item in spec.inputs:
        if item.kind == "texts":
            payload["post_separator"] = item.separator
            payload["max_chars"] = item.max_joined_chars
    return payload


def _labels(name: str, spec: ServingSpec) -> dict[str, Any]:
    heads = {head.output: head for head in spec.heads}
    if name == "qa":
        answers = heads["answer_probs"]
        assert isinstance(answers, CategoricalHead)
        return {"answers": answers.labels}
    if name == "profile":
        income, gender, age = heads["income_probs"], heads["gender_prob"], heads["age"]
        assert isinstance(income, CategoricalHead) and isinstance(gender, BinaryHead)
        assert isinstance(age, RegressionHead)
        rules = income.label_descriptions or [""] * len(income.labels)
        return {
            "income_groups": [
                {"group": index, "label": label, "rule": rule}
                for index, (label, rule) in enumerate(zip(income.labels, rules, strict=True))
            ],
            "income_is_proxy": True,
            "income_note": income.note,
            "gender": {"labels": list(gender.labels), "positive": gender.labels[1]},
            "age": {"unit": age.unit},
        }
    score = heads["score"]
    assert isinstance(score, ScoreHead)
    return {"score": {"range": list(score.range), "meaning": score.meaning}}
