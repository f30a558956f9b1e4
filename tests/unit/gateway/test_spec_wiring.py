"""A spec that wires a field to another tensor than the model was exported with is unfit.

Found by the adversarial repo pass 7: qa's spec with its two inputs' tensors swapped (each
field then fed the other's tensor; both ``[-1, -1]`` int32, max_tokens swapped along) passed
every check, was routed, and answered every question from the question read as the story:
a 200 of garbage. ``export_for_serving`` records each field's tensor in ``model_card.json``
(``input_tensors``, ``head_outputs``); the gateway refuses a spec that differs for a field
the card names.
"""

from __future__ import annotations

import json
import shutil

import pytest

from serving.contract import ASSETS_DIR, MODEL_CARD_FILE
from serving.gateway.runtime import UnfitVersionError, load_runtime
from serving.spec import SPEC_FILE
from tests.unit.gateway.conftest import RUNTIME_SETTINGS as SETTINGS
from tests.unit.gateway.conftest import copy_qa


def test_a_spec_with_two_inputs_tensors_swapped_is_unfit(tiny_repo, tmp_path) -> None:
    assets = copy_qa(tiny_repo, tmp_path)
    spec = json.loads((assets / SPEC_FILE).read_text())
    card = json.loads((assets / MODEL_CARD_FILE).read_text())
    assert card["input_tensors"] == {"article": "article_ids", "question": "question_ids"}
    assert card["head_outputs"] == {"answer": "answer_probs"}
    article, question = spec["inputs"]
    article["tensor"], question["tensor"] = question["tensor"], article["tensor"]
    article["max_tokens"], question["max_tokens"] = question["max_tokens"], article["max_tokens"]
    (assets / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason == (
        "field article is wired to question_ids, the model was exported with it wired to "
        "article_ids (model_card.json input_tensors)"
    )
    del card["input_tensors"]  # a card of an older export names none: not checked
    (assets / MODEL_CARD_FILE).write_text(json.dumps(card))
    assert load_runtime(tmp_path, "qa", 1, SETTINGS).spec.inputs[0].tensor == "question_ids"


def test_two_heads_reading_each_others_outputs_are_unfit(tiny_repo, tmp_path) -> None:
    # profile's age (a regression) read gender_prob and gender (binary) read age: the fit
    # check passed (both [batch, 1] floats) and every answer was a 502 or an age of 0.4.
    shutil.copytree(tiny_repo / "profile" / "1", tmp_path / "profile" / "1")
    spec_file = tmp_path / "profile" / "1" / ASSETS_DIR / SPEC_FILE
    spec = json.loads(spec_file.read_text())
    heads = {head["field"]: head for head in spec["heads"]}
    heads["age"]["output"], heads["gender"]["output"] = "gender_prob", "age"
    spec_file.write_text(json.dumps(spec))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "profile", 1, SETTINGS)
    assert caught.value.reason == (
        "field age is wired to gender_prob, the model was exported with it wired to age "
        "(model_card.json head_outputs)"
    )
    heads["age"]["output"], heads["gender"]["output"] = "age", "gender_prob"
    heads["age"]["field"] = "years"  # a field renamed is the spec's to choose
    spec_file.write_text(json.dumps(spec))
    assert load_runtime(tmp_path, "profile", 1, SETTINGS).spec.heads[0].field == "years"
