"""export_for_serving: a complete version for any spec, refused mismatches, models.config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving import contract
from serving.encoding import encode_instances
from serving.spec import (
    SPEC_FILE,
    BinaryHead,
    CategoricalHead,
    MultilabelHead,
    RegressionHead,
    ScoreHead,
    SegmentRule,
    SegmentWeightsHead,
    ServingSpec,
    TextInput,
    TextsInput,
    load_spec,
)
from serving.spec_outputs import head_labels
from serving.tokenization import file_sha256, load_tokenizer
from training.architecture import PLOT_FILE, SUMMARY_FILE, plotting_unavailable
from training.export import (
    SpecMismatchError,
    VersionExistsError,
    export_for_serving,
)
from training.model_config import GENERATED_MARKER, configured_models
from training.tiny import export_spec_model
from training.tiny_models import spec_model

LABELS = ["north", "south", "east"]


def make_spec(
    vocab: int, labels: list[str] = LABELS, output: str = "direction_probs"
) -> ServingSpec:
    def text(field: str, tensor: str) -> TextInput:
        return TextInput(field=field, tensor=tensor, max_tokens=16, vocab_size=vocab)

    return ServingSpec(
        title="Direction guesser",
        inputs=[text("place", "place_ids"), text("hint", "hint_ids")],
        heads=[
            CategoricalHead(output=output, field="direction", labels=labels),
            RegressionHead(output="distance", field="distance_km", unit="km"),
        ],
        example={"place": "the cat sat on the mat.", "hint": "where is the dog?"},
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tokenizer_path: Path, vocab: int) -> Path:
    spec = make_spec(vocab)
    repo = tmp_path_factory.mktemp("repo")
    summary = repo.parent / "summary.txt"
    summary.write_text("a summary")
    return export_for_serving(
        spec_model(spec),
        spec,
        {"tokenizer.json": tokenizer_path},
        name="directions",
        repo=repo,
        model_card={"preset": "test"},
        extra_assets={"summary.txt": summary},
    )


def test_writes_a_complete_version(exported: Path, vocab: int) -> None:
    assets = exported / contract.ASSETS_DIR
    assert exported.name == "1" and (exported / "saved_model.pb").is_file()
    assert (exported / "variables").is_dir()
    assert (assets / "summary.txt").read_text() == "a summary"
    assert load_spec(assets / SPEC_FILE) == make_spec(vocab)
    assert not (assets / contract.LABELS_FILE).exists()
    assert not (assets / contract.PREPROCESSING_FILE).exists()
    card = json.loads((assets / contract.MODEL_CARD_FILE).read_text())
    assert card["name"] == "directions" and card["version"] == 1 and card["preset"] == "test"
    assert card["title"] == "Direction guesser"
    assert card["tokenizer_sha256"] == {"tokenizer.json": file_sha256(assets / "tokenizer.json")}
    assert card["labels"] == head_labels(make_spec(vocab))  # each output's, column order
    assert card["labels"]  # the test spec has a labelled head
    assert not [path for path in exported.parent.iterdir() if path.name.startswith(".")]


def test_signature_matches_the_spec(exported: Path) -> None:
    signature = tf.saved_model.load(str(exported)).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert set(inputs) == {"place_ids", "hint_ids"}
    assert all(
        spec.dtype == tf.int32 and spec.shape.as_list() == [None, None] for spec in inputs.values()
    )
    outputs = signature(
        place_ids=tf.constant([[4, 5, 6], [7, 0, 0]]), hint_ids=tf.constant([[4], [5]])
    )
    assert {key: (value.dtype, value.shape.as_list()) for key, value in outputs.items()} == {
        "direction_probs": (tf.float32, [2, 3]),
        "distance": (tf.float32, [2]),
    }


def test_warmup_starts_with_the_encoded_example(exported: Path, tokenizer_path: Path) -> None:
    assets = exported / contract.ASSETS_DIR
    records = list(tf.data.TFRecordDataset(str(assets / contract.WARMUP_FILE)).as_numpy_iterator())
    requests = [prediction_log_pb2.PredictionLog.FromString(r).predict_log.request for r in records]
    assert [r.model_spec.name for r in requests] == ["directions"] * 3
    spec = load_spec(assets / SPEC_FILE)
    expected = encode_instances(
        spec, {"tokenizer.json": load_tokenizer(tokenizer_path)}, [spec.example]
    )
    first = {key: tf.make_ndarray(value) for key, value in requests[0].inputs.items()}
    assert first.keys() == expected.keys()
    for key, ids in expected.items():
        np.testing.assert_array_equal(first[key], ids)
        assert first[key].dtype == np.int32
    assert [tf.make_ndarray(r.inputs["hint_ids"]).shape[0] for r in requests] == [1, 2, 4]


def test_never_overwrites_a_version(exported: Path, tokenizer_path: Path, vocab: int) -> None:
    spec = make_spec(vocab)
    before = (exported / "saved_model.pb").read_bytes()
    with pytest.raises(VersionExistsError):
        export_for_serving(
            spec_model(spec),
            spec,
            {"tokenizer.json": tokenizer_path},
            name="directions",
            repo=exported.parents[1],
            version=1,
        )
    assert (exported / "saved_model.pb").read_bytes() == before


@pytest.mark.parametrize(
    ("spec_labels", "spec_output", "message"),
    [
        (["a", "b"], "direction_probs", "direction_probs"),
        (LABELS, "missing_probs", "not a model output"),
    ],
)
def test_refuses_a_model_that_does_not_fit(
    tmp_path: Path,
    tokenizer_path: Path,
    vocab: int,
    spec_labels: list[str],
    spec_output: str,
    message: str,
) -> None:
    model = spec_model(make_spec(vocab))  # three labels, output direction_probs
    with pytest.raises(SpecMismatchError, match=message):
        export_for_serving(
            model,
            make_spec(vocab, spec_labels, spec_output),
            {"tokenizer.json": tokenizer_path},
            name="directions",
            repo=tmp_path,
        )
    assert not (tmp_path / "directions").exists()


def test_refuses_a_tokenizer_larger_than_vocab_size(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    spec = make_spec(vocab - 1)
    with pytest.raises(SpecMismatchError, match="vocab_size"):
        export_for_serving(
            spec_model(spec), spec, {"tokenizer.json": tokenizer_path}, name="d", repo=tmp_path
        )


def test_refuses_a_vocab_size_larger_than_the_embedding(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    with pytest.raises(SpecMismatchError, match="Embedding"):
        export_for_serving(
            spec_model(make_spec(vocab)),
            make_spec(vocab + 5),
            {"tokenizer.json": tokenizer_path},
            name="d",
            repo=tmp_path,
        )


def test_refuses_non_finite_outputs_and_leaves_nothing(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    spec = make_spec(vocab)
    model = spec_model(spec)
    bias = model.get_layer("distance").bias
    bias.assign(np.full(bias.shape, np.nan, np.float32))
    with pytest.raises(SpecMismatchError, match="not finite"):
        export_for_serving(model, spec, {"tokenizer.json": tokenizer_path}, name="d", repo=tmp_path)
    assert list((tmp_path / "d").iterdir()) == []  # no version, no staging folder
    assert not (tmp_path / contract.MODELS_CONFIG_FILE).exists()


def test_refuses_bad_names_and_tokenizer_maps(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    spec = make_spec(vocab)
    with pytest.raises(ValueError, match="model name"):
        export_for_serving(
            None, spec, {"tokenizer.json": tokenizer_path}, name="../x", repo=tmp_path
        )
    # A spec edited without its checks (model_copy) is checked as the gateway reads it: an
    # empty signature_name was exported and served as TF Serving's serving_default.
    unnamed = spec.model_copy(update={"signature_name": ""})
    with pytest.raises(ValueError, match=r"signature_name\n.*must not be empty or blank"):
        export_for_serving(
            None, unnamed, {"tokenizer.json": tokenizer_path}, name="x", repo=tmp_path
        )
    with pytest.raises(ValueError, match="tokenizers must map"):
        export_for_serving(None, spec, {"other.json": tokenizer_path}, name="x", repo=tmp_path)
    with pytest.raises(TypeError, match=r"keras\.Model"):
        export_for_serving(None, spec, {"tokenizer.json": tokenizer_path}, name="x", repo=tmp_path)
    # Found as a new user: a wrong path was the tokenizers library's bare "Exception: No such
    # file or directory (os error 2)", a BERT vocab.txt "expected value at line 1 column 1".
    missing = tmp_path / "tokenizr.json"
    with pytest.raises(FileNotFoundError, match=r"tokenizers\['tokenizer.json'\]: .*tokenizr"):
        export_for_serving(None, spec, {"tokenizer.json": missing}, name="x", repo=tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nthe\n")
    with pytest.raises(ValueError, match=r"vocab.txt' is not a tokenizers tokenizer.json"):
        export_for_serving(
            None, spec, {"tokenizer.json": tmp_path / "vocab.txt"}, name="x", repo=tmp_path
        )


def test_registers_models_in_a_generated_config(
    exported: Path, tokenizer_path: Path, vocab: int
) -> None:
    repo = exported.parents[1]
    text = (repo / contract.MODELS_CONFIG_FILE).read_text()
    assert text.startswith(GENERATED_MARKER) and configured_models(text) == ["directions"]
    spec = make_spec(vocab)
    export_for_serving(
        spec_model(spec), spec, {"tokenizer.json": tokenizer_path}, name="arrows", repo=repo
    )
    text = (repo / contract.MODELS_CONFIG_FILE).read_text()
    assert configured_models(text) == ["arrows", "directions"]
    assert (repo / contract.MONITORING_CONFIG_FILE).is_file()
    assert (repo / contract.BATCHING_CONFIG_FILE).is_file()
    # Without extra_assets the export writes the architecture the gateway links in /docs.
    assets = repo / "arrows" / "1" / contract.ASSETS_DIR
    assert "direction_probs" in (assets / SUMMARY_FILE).read_text()
    if plotting_unavailable() is None:
        assert (assets / PLOT_FILE).read_bytes().startswith(b"\x89PNG")


def test_tiny_models_for_a_spec_with_every_head_kind(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    spec = ServingSpec(
        title="Every head",
        inputs=[
            TextInput(field="story", tensor="story_ids", max_tokens=32, vocab_size=vocab),
            TextsInput(
                field="notes", tensor="note_ids", max_tokens=16, vocab_size=vocab, separator="[SEP]"
            ),
        ],
        heads=[
            CategoricalHead(output="topic_probs", field="topic", labels=["a", "b"]),
            BinaryHead(output="spam_prob", field="spam", labels=("ham", "spam")),
            MultilabelHead(output="tag_probs", field="tags", labels=["x", "y", "z"]),
            RegressionHead(output="length", field="length"),
            ScoreHead(output="quality", field="quality"),
            SegmentWeightsHead(
                output="evidence",
                field="evidence",
                input_field="story",
                rule=SegmentRule(separator_token=".", max_segments=4),
            ),
        ],
        example={"story": "the cat sat. the dog ran.", "notes": ["a note", "another"]},
    )
    version = export_spec_model(tmp_path, spec, "every", {"tokenizer.json": tokenizer_path})
    outputs = tf.saved_model.load(str(version)).signatures["serving_default"](
        story_ids=tf.constant([[4, 5, 6]]), note_ids=tf.constant([[7, 2, 8]])
    )
    shapes = {key: value.shape.as_list() for key, value in outputs.items()}
    assert shapes == {
        "topic_probs": [1, 2],
        "spam_prob": [1],
        "tag_probs": [1, 3],
        "length": [1],
        "quality": [1],
        "evidence": [1, 4],
    }
