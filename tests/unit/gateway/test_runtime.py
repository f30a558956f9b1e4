"""Runtime units built from a spec: strict request models, preprocess, postprocess; legacy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from serving.contract import (
    ASSETS_DIR,
    LABELS_FILE,
    MODEL_CARD_FILE,
    PREPROCESSING_FILE,
    TOKENIZER_FILE,
)
from serving.gateway import runtime
from serving.gateway.aliases import qa_answer
from serving.gateway.heads import OutputError
from serving.gateway.runtime import UnfitVersionError, load_runtime
from serving.gateway.settings import GatewaySettings
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
from tests.support.legacy_repo import make_legacy

SETTINGS = GatewaySettings(max_chars_per_text=50, max_instances_per_batch=2, max_top_k=3)
STORY = "Mary went to the kitchen. John moved to the office."


@pytest.fixture(scope="module")
def qa(tiny_repo: Path):
    return load_runtime(tiny_repo, "qa", 1, SETTINGS)


@pytest.fixture(scope="module")
def legacy_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every tiny model as a version exported before the serving spec."""
    repo = tmp_path_factory.mktemp("legacy")
    for model in ("qa", "profile", "similarity"):
        shutil.copytree(tiny_repo / model / "1", repo / model / "1")
        make_legacy(repo / model / "1", model)
    return repo


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
    probabilities[1, 2] = 0.9
    answers = qa.postprocess({"answer_probs": probabilities}, instances, [None, 2])
    assert len(answers[0]["answer"]["candidates"]) == 1
    assert answers[1]["answer"]["label"] == qa.spec.heads[0].labels[2]
    assert len(answers[1]["answer"]["candidates"]) == 2
    probabilities[0, 0] = np.nan
    with pytest.raises(OutputError):
        qa.postprocess({"answer_probs": probabilities}, instances)


def _copy(tiny_repo: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_repo / "qa" / "1", tmp_path / "qa" / "1")
    return tmp_path / "qa" / "1" / ASSETS_DIR


def test_a_spec_wins_over_legacy_files_and_vocab_size_is_checked(qa, legacy_repo, tmp_path) -> None:
    folder = _copy(legacy_repo, tmp_path)
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
    folder = _copy(legacy_repo, tmp_path)
    for name, text in broken.items():
        if text is None:
            (folder / name).unlink()
        else:
            (folder / name).write_text(text)
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert reason in caught.value.reason and str(tmp_path) not in caught.value.reason


def test_segment_weights_head_maps_weights_to_sentences(qa, tiny_repo, tmp_path) -> None:
    folder = _copy(tiny_repo, tmp_path)
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


def test_a_field_name_pydantic_reserves_makes_the_version_unfit(qa, tiny_repo, tmp_path) -> None:
    folder = _copy(tiny_repo, tmp_path)
    spec = json.loads(dump_spec(qa.spec))
    spec["inputs"][0]["field"] = "model_config"
    spec["example"]["model_config"] = spec["example"].pop("article")
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(UnfitVersionError, match="request fields"):
        load_runtime(tmp_path, "qa", 1, SETTINGS)


def _swap_two_words(tokenizer_file: Path) -> None:
    """Another tokenizer of the same vocabulary size: two words trade ids."""
    data = json.loads(tokenizer_file.read_text())
    vocab = data["model"]["vocab"]
    vocab["mary"], vocab["john"] = vocab["john"], vocab["mary"]
    tokenizer_file.write_text(json.dumps(data))


def test_a_tokenizer_other_than_the_exported_one_makes_the_version_unfit(tiny_repo, tmp_path):
    # Same vocabulary size, so vocab_size and the example's shapes pass: it was routed, and
    # every "mary" reached the model as "john". model_card.json records the exported sha256.
    assets = _copy(tiny_repo, tmp_path)
    _swap_two_words(assets / TOKENIZER_FILE)
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason == (
        "tokenizer tokenizer.json is not the one exported with the model "
        "(its sha256 differs from model_card.json)"
    )
    (assets / MODEL_CARD_FILE).write_text("{")  # a card that cannot be read is no proof
    with pytest.raises(UnfitVersionError, match=r"model_card\.json cannot be read"):
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    (assets / MODEL_CARD_FILE).write_text('{"name": "qa"}')  # no hashes recorded: not checked
    assert load_runtime(tmp_path, "qa", 1, SETTINGS).version == 1


@pytest.mark.parametrize("question", ["???", "[PAD]", "\u200b"])
def test_an_example_without_words_makes_the_version_unfit(qa, tiny_repo, tmp_path, question):
    # It was routed, and /docs offered an example that every endpoint refused (422 no_words).
    assets = _copy(tiny_repo, tmp_path)
    example = {**qa.spec.example, "question": question}
    (assets / SPEC_FILE).write_text(dump_spec(qa.spec.model_copy(update={"example": example})))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason == "the spec's example question has no word for its tokenizer"


def test_a_runaway_asset_file_is_refused_unread(tiny_repo, legacy_repo, tmp_path, monkeypatch):
    # Found by the adversarial repo pass: every worker read each asset whole at each check, so
    # a spec grown to gigabytes (a labels list gone wrong) took each worker's memory. A spec
    # past the limit, here valid JSON padded with blanks, was routed.
    assets = _copy(tiny_repo, tmp_path)
    spec = assets / SPEC_FILE
    spec.write_bytes(spec.read_bytes() + b" " * 16 * 2**20)
    with pytest.raises(UnfitVersionError, match=r"^serving_spec\.json is larger than 16 MiB$"):
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    shutil.copy2(tiny_repo / "qa" / "1" / ASSETS_DIR / SPEC_FILE, spec)
    monkeypatch.setattr(runtime, "MAX_TOKENIZER_BYTES", 1000)
    with pytest.raises(UnfitVersionError, match=r"^tokenizer\.json is larger than 0 MiB$"):
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    monkeypatch.setattr(runtime, "MAX_METADATA_BYTES", 10)
    with pytest.raises(UnfitVersionError, match=r"^preprocessing\.json is larger than 0 MiB$"):
        load_runtime(legacy_repo, "qa", 1, SETTINGS)


def test_fixing_an_assets_permissions_changes_its_fingerprint(tiny_repo, tmp_path) -> None:
    # Found by the adversarial repo pass: an unfit verdict is kept until the assets' size or
    # mtime change, and chmod changes neither: a spec made readable again stayed unfit until
    # the gateway restarted.
    assets = _copy(tiny_repo, tmp_path)
    before = runtime.assets_fingerprint(tmp_path, "qa", 1)
    (assets / SPEC_FILE).chmod(0o000)
    unreadable = runtime.assets_fingerprint(tmp_path, "qa", 1)
    (assets / SPEC_FILE).chmod(0o644)
    assert len({before, unreadable, runtime.assets_fingerprint(tmp_path, "qa", 1)}) == 3


def _edit_tokenizer(assets: Path, change) -> None:
    """Change tokenizer.json (the card's hash goes: not checked without it)."""
    data = json.loads((assets / TOKENIZER_FILE).read_text())
    change(data)
    (assets / TOKENIZER_FILE).write_text(json.dumps(data))
    (assets / MODEL_CARD_FILE).unlink()


def test_a_tokenizer_id_past_vocab_size_makes_the_version_unfit(tiny_repo, tmp_path) -> None:
    # Found by the adversarial repo pass: the check counted the ids (get_vocab_size), so a
    # vocabulary of 33 ids with a gap ("mary" at 100) passed a vocab_size of 33, and "mary"
    # reached the model's 33-row embedding (a 502 on CPU for each text with it; zeros on GPU).
    assets = _copy(tiny_repo, tmp_path)
    _edit_tokenizer(assets, lambda data: data["model"]["vocab"].update(mary=100))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason.startswith("tokenizer tokenizer.json gives ids up to 100, beyond")
