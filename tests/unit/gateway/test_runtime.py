"""Runtime units built from a spec: strict request models, preprocess, postprocess; legacy."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from serving.contract import (
    ASSETS_DIR,
    LABELS_FILE,
    MODELS_CONFIG_FILE,
    PREPROCESSING_FILE,
    TOKENIZER_FILE,
)
from serving.gateway.aliases import qa_answer
from serving.gateway.errors import GatewayError
from serving.gateway.heads import OutputError
from serving.gateway.routes import prepare
from serving.gateway.runtime import UnfitVersionError, load_runtime
from serving.spec import (
    SPEC_FILE,
    BinaryHead,
    CategoricalHead,
    RegressionHead,
    ScoreHead,
    TextsInput,
    dump_spec,
)
from serving.tokenization import encode_texts, load_tokenizer
from tests.unit.gateway.conftest import RUNTIME_SETTINGS, copy_qa

SETTINGS = RUNTIME_SETTINGS
STORY = "Mary went to the kitchen. John moved to the office."


def test_legacy_qa_is_read_as_an_equivalent_spec(qa, legacy_repo: Path) -> None:
    legacy = load_runtime(legacy_repo, "qa", 1, SETTINGS)
    assert legacy.legacy and not qa.legacy
    assert [item.field for item in legacy.spec.inputs] == ["article", "question"]
    head = legacy.spec.heads[0]
    assert isinstance(head, CategoricalHead)
    labels = json.loads((legacy_repo / "qa" / "1" / ASSETS_DIR / LABELS_FILE).read_text())
    assert (head.kind, head.field, head.labels) == ("categorical", "answer", labels["answers"])
    vocab = legacy.tokenizers[TOKENIZER_FILE].get_vocab_size()
    assert legacy.spec.inputs[0].vocab_size == vocab
    for mine, theirs in zip(legacy.spec.inputs, qa.spec.inputs, strict=True):
        assert (mine.tensor, mine.max_tokens, mine.truncation) == (
            theirs.tensor,
            theirs.max_tokens,
            theirs.truncation,
        )
    folder = legacy_repo / "qa" / "1" / ASSETS_DIR  # the pre-spec way: preprocessing.json
    article = json.loads((folder / PREPROCESSING_FILE).read_text())["inputs"]["article_ids"]
    tokenizer = load_tokenizer(folder / TOKENIZER_FILE)
    expected = encode_texts(tokenizer, [STORY], article["max_length"], article["truncation"])
    tensors = legacy.preprocess([{"article": STORY, "question": "Where is Mary?"}])
    assert (tensors["article_ids"] == expected).all()


def test_legacy_profile_and_similarity(legacy_repo: Path) -> None:
    profile = load_runtime(legacy_repo, "profile", 1, SETTINGS).spec
    age, income, gender = profile.heads
    assert isinstance(age, RegressionHead) and age.unit == "years"
    assert isinstance(income, CategoricalHead) and income.field == "income_group"
    assert len(income.labels) == 10 and income.note and income.label_descriptions
    assert isinstance(gender, BinaryHead) and gender.labels == ("female", "male")
    posts = profile.inputs[0]
    assert isinstance(posts, TextsInput) and posts.separator == "[SEP]"
    similarity = load_runtime(legacy_repo, "similarity", 1, SETTINGS).spec
    assert [item.field for item in similarity.inputs] == ["text_a", "text_b"]
    score = similarity.heads[0]
    assert isinstance(score, ScoreHead) and score.range == (0.0, 1.0)


@pytest.mark.parametrize(
    ("payload", "location", "kind"),
    [
        ({"inputs": {"article": "a"}}, ("inputs", "question"), "missing"),
        ({"inputs": {"article": 5, "question": "q"}}, ("inputs", "article"), "string_type"),
        ({"inputs": {"article": ["a"], "question": "q"}}, ("inputs", "article"), "string_type"),
        ({"inputs": {"article": "a", "question": "q", "x": 1}}, ("inputs", "x"), "extra_forbidden"),
        (
            {"inputs": {"article": "a" * 51, "question": "q"}},
            ("inputs", "article"),
            "limit_exceeded",
        ),
        ({"inputs": {"article": "a", "question": "q"}, "top_k": 4}, ("top_k",), "limit_exceeded"),
        ({"inputs": {"article": "a", "question": "q"}, "top_k": True}, ("top_k",), "int_type"),
    ],
)
def test_request_model_is_strict_with_limits(qa, payload, location, kind) -> None:
    with pytest.raises(ValidationError) as caught:
        qa.models.single.model_validate(payload)
    assert (location, kind) in [(item["loc"], item["type"]) for item in caught.value.errors()]


def test_batch_limit_and_schema_documents_limits(qa) -> None:
    instance = {"article": "a", "question": "q"}
    with pytest.raises(ValidationError):
        qa.models.batch.model_validate({"instances": [instance] * 3})
    schema = qa.models.batch.model_json_schema()
    assert schema["properties"]["instances"]["maxItems"] == 2
    assert schema["$defs"]["QaInstance"]["properties"]["article"]["maxLength"] == 50


def test_postprocess_answers_per_instance_and_refuses_nan(qa) -> None:
    instances = [{"article": STORY, "question": "Where is Mary?"}] * 2
    width = len(qa.spec.heads[0].labels)
    probabilities = np.full((2, width), 1.0 / width, np.float32)
    probabilities[1] = 0.1 / (width - 1)  # a softmax row: answers are probabilities
    probabilities[1, 2] = 0.9
    answers = qa.postprocess({"answer_probs": probabilities}, instances, [None, 2])
    assert len(answers[0]["answer"]["candidates"]) == 1
    assert answers[1]["answer"]["label"] == qa.spec.heads[0].labels[2]
    assert len(answers[1]["answer"]["candidates"]) == 2
    probabilities[0, 0] = np.nan
    with pytest.raises(OutputError):
        qa.postprocess({"answer_probs": probabilities}, instances)


def test_a_spec_wins_over_legacy_files_and_vocab_size_is_checked(qa, legacy_repo, tmp_path) -> None:
    folder = copy_qa(legacy_repo, tmp_path)
    item = qa.spec.inputs[0]
    small = qa.spec.model_copy(
        update={"inputs": [item.model_copy(update={"vocab_size": 10}), qa.spec.inputs[1]]}
    )
    (folder / SPEC_FILE).write_text(dump_spec(small))
    with pytest.raises(UnfitVersionError, match="vocab_size 10"):
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    (folder / SPEC_FILE).write_text(dump_spec(qa.spec))
    assert not load_runtime(tmp_path, "qa", 1, SETTINGS).legacy


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ({SPEC_FILE: '{"title": "x"}'}, "invalid serving_spec.json"),
        ({LABELS_FILE: None}, "no serving_spec.json"),
        ({LABELS_FILE: '{"no_answers": []}'}, "legacy"),
        ({TOKENIZER_FILE: "not json"}, "cannot be read"),
    ],
)
def test_unfit_versions_have_short_reasons(legacy_repo, tmp_path, broken, reason) -> None:
    folder = copy_qa(legacy_repo, tmp_path)
    for name, text in broken.items():
        if text is None:
            (folder / name).unlink()
        else:
            (folder / name).write_text(text)
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert reason in caught.value.reason and str(tmp_path) not in caught.value.reason


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda spec: spec["inputs"][0].update(max_tokns=spec["inputs"][0].pop("max_tokens")),
            "inputs.0.max_tokens: Field required; "
            "inputs.0.max_tokns: unknown field (did you mean 'max_tokens'?)",
        ),
        (
            lambda spec: spec["heads"][0].update(lables=spec["heads"][0].pop("labels")),
            "heads.0.lables: unknown field (did you mean 'labels'?)",
        ),
        (lambda spec: spec.update(exampel=spec.pop("example")), "did you mean 'example'?"),
        # Found by the new-user trial (newuser9): a categorical head's kind changed to
        # multilabel was told "did you mean 'description'?" for its label_descriptions.
        (
            lambda spec: spec["heads"][0].update(kind="multilabel"),
            "heads.0.label_descriptions: unknown field for a multilabel head (a field of "
            "categorical heads)",
        ),
        (lambda spec: spec["inputs"][0].update(max_tokens=0), "inputs.0.max_tokens: Input should"),
        # "" was served as TF Serving's serving_default, not refused.
        (lambda spec: spec.update(signature_name=""), "signature_name: Value error, must not"),
    ],
    ids=["input-field", "head-field", "top-field", "other-kind", "value", "empty-signature"],
)
def test_an_invalid_spec_says_where_it_is_wrong(qa, tiny_repo, tmp_path, edit, reason) -> None:
    # Found as a new user: a misspelt spec field was only "invalid serving_spec.json" in
    # GET /v1/models and /readyz; which field, and its right name, was in the log alone.
    folder = copy_qa(tiny_repo, tmp_path)
    spec = json.loads(dump_spec(qa.spec))
    edit(spec)
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason.startswith("invalid serving_spec.json: ")
    assert reason in caught.value.reason and str(tmp_path) not in caught.value.reason


def test_segment_weights_head_maps_weights_to_sentences(qa, tiny_repo, tmp_path) -> None:
    folder = copy_qa(tiny_repo, tmp_path)
    spec = json.loads(dump_spec(qa.spec))
    spec["heads"].append(
        {
            "kind": "segment_weights",
            "output": "sentence_weights",
            "field": "evidence",
            "input_field": "article",
            "rule": {"separator_token": ".", "order": "last_first", "max_segments": 4},
            "top_k": 1,
        }
    )
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    runtime = load_runtime(tmp_path, "qa", 1, SETTINGS)
    width = len(qa.spec.heads[0].labels)
    outputs = {
        "answer_probs": np.full((1, width), 1.0 / width),
        "sentence_weights": np.array([[0.1, 0.8, 0.1, 0.0]]),  # slot 1 = the first sentence
    }
    answer = runtime.postprocess(outputs, [{"article": STORY, "question": "Where is Mary?"}])
    assert answer[0]["evidence"][0]["segment"].lower() == "mary went to the kitchen."
    shaped = qa_answer(runtime, answer[0])  # /v1/qa adds the evidence in its own shape
    # "segment" as on :predict; "sentence", the same text, kept for the first API's clients.
    text = "Mary went to the kitchen."
    assert shaped["evidence"] == [{"segment": text, "sentence": text, "weight": 0.8}]
    assert shaped["answer"] == answer[0]["answer"]["label"]


@pytest.mark.parametrize("name", ["model_config", "_article", "schema", "renamed_0"])
def test_any_spec_field_name_is_a_request_field(qa, tiny_repo, tmp_path, name) -> None:
    # pydantic takes neither "model_config" nor "_article" as a field name: such a version was
    # exported yet never routed ("the spec's field names cannot be used as request fields");
    # "schema" shadowed BaseModel.schema (a warning at every load). Each is its field's alias.
    folder = copy_qa(tiny_repo, tmp_path)
    spec = json.loads(dump_spec(qa.spec))
    spec["inputs"][0]["field"] = name
    spec["example"][name] = spec["example"].pop("article")
    spec["heads"][0]["field"] = name  # an answer field too
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "shadows an attribute in parent" either
        runtime = load_runtime(tmp_path, "qa", 1, SETTINGS)
    body = {"inputs": {name: "Mary went to the kitchen.", "question": "Where is Mary?"}}
    prepared = prepare(runtime, body)
    assert prepared.instances == [body["inputs"]]
    assert runtime.preprocess(prepared.instances)["article_ids"].shape[0] == 1
    with pytest.raises(GatewayError) as caught:  # errors name the request's own key
        prepare(runtime, {"inputs": {name: "", "question": "Where is Mary?"}})
    assert caught.value.detail[0]["loc"] == ["body", "inputs", name]
    schema = runtime.models.single_response.model_json_schema()
    assert name in schema["$defs"]["QaOutputs"]["properties"]


@pytest.mark.parametrize("layout", ["empty", "nested"])
def test_a_version_folder_without_its_saved_model_says_so(tiny_repo, tmp_path, layout) -> None:
    # Found by the new-user trial (newuser9): an empty version folder, or one whose SavedModel
    # (spec and all) was exported into a subfolder, was "no serving_spec.json".
    version = tmp_path / "qa" / "2"
    if layout == "nested":
        shutil.copytree(tiny_repo / "qa" / "1", version / "export")
    else:
        version.mkdir(parents=True)
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 2, SETTINGS)
    reason = caught.value.reason
    assert reason.startswith("the version folder is incomplete: it holds no saved_model.pb")
    assert ("export/saved_model.pb is in it" in reason) == (layout == "nested")
    assert str(tmp_path) not in reason


@pytest.mark.parametrize("fault", ["base_path_typo", "other_repo"])
def test_a_version_without_a_folder_here_names_the_folder_not_a_copy(
    tiny_repo, tmp_path, fault
) -> None:
    # Found by the new-user trial (newuser11): a base_path typo in models.config (the model
    # server kept its loaded version), or a gateway given another repo than the model
    # server's, was "the version folder is incomplete ... (a copy still under way?)".
    shutil.copytree(tiny_repo / "qa", tmp_path / "qa")
    if fault == "base_path_typo":
        (tmp_path / MODELS_CONFIG_FILE).write_text(
            'model_config_list { config { name: "qa" base_path: "qaa" '
            'model_platform: "tensorflow" } }'
        )
        version, expected = 1, "has no folder 'qaa' (this model's base_path in models.config)"
    else:
        version, expected = 7, "has no folder qa/7, yet the model server runs that version"
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", version, SETTINGS)
    reason = caught.value.reason
    assert expected in reason
    assert "copy still under way" not in reason
    assert str(tmp_path) not in reason
