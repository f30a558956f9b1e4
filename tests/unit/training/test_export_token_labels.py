"""export_for_serving with a token_labels head (a tagger): accepted when its output is one
softmax per id of its input's row, refused with a named reason otherwise."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pytest

from serving.spec import ServingSpec, TextInput, TokenLabelsHead
from training.export import SpecMismatchError, export_for_serving

TAGS = TokenLabelsHead(
    output="tags", field="tags", input_field="text", labels=["O", "B-X", "I-X"], outside_label="O"
)


def _spec(
    vocab: int, head: TokenLabelsHead = TAGS, padding: Literal["left", "right"] = "right"
) -> ServingSpec:
    item = TextInput(
        field="text", tensor="text_ids", max_tokens=16, vocab_size=vocab, padding=padding
    )
    return ServingSpec(
        title="t", inputs=[item], heads=[head], example={"text": "the cat sat on the mat."}
    )


def _tagger(vocab: int, units: int = 3, activation: str | None = "softmax", length: Any = None):
    import keras

    keras.utils.set_random_seed(3)
    ids = keras.Input((length,), dtype="int32", name="text_ids")
    embedded = keras.layers.Embedding(vocab, 4)(ids)
    tags = keras.layers.Dense(units, activation=activation)(embedded)
    return keras.Model({"text_ids": ids}, {"tags": tags})


def _export(tmp_path: Path, tokenizer_path: Path, model: Any, spec: ServingSpec) -> Path:
    return export_for_serving(
        model, spec, {"tokenizer.json": tokenizer_path}, name="m", repo=tmp_path / "repo"
    )


@pytest.mark.parametrize(("padding", "length"), [("right", None), ("left", None), ("left", 20)])
def test_a_tagger_is_exported_with_one_distribution_per_id_sent(
    tmp_path: Path,
    tokenizer_path: Path,
    vocab: int,
    padding: Literal["left", "right"],
    length: int | None,
) -> None:
    import numpy as np
    import tensorflow as tf

    folder = _export(
        tmp_path, tokenizer_path, _tagger(vocab, length=length), _spec(vocab, padding=padding)
    )
    function = tf.saved_model.load(str(folder)).signatures["serving_default"]
    ids = np.array([[5, 6, 7, 0], [8, 0, 0, 0]], np.int32)
    tags = function(text_ids=tf.constant(ids))["tags"].numpy()
    assert tags.shape == (2, length or 4, 3)
    # Position i labels the row's i-th id sent, whichever side the model was padded on.
    alone = function(text_ids=tf.constant(ids[1:, :1]))["tags"].numpy()
    assert np.allclose(tags[1, 0], alone[0, 0], atol=1e-6)
    assert np.allclose(
        tags[0, 2], function(text_ids=tf.constant(ids[:1, :3]))["tags"].numpy()[0, 2]
    )


def test_a_pooled_output_under_a_token_head_is_refused(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(vocab, 4)(ids))
    model = keras.Model({"text_ids": ids}, {"tags": keras.layers.Dense(3, "softmax")(pooled)})
    with pytest.raises(
        SpecMismatchError, match=r"one label distribution per token of input 'text'"
    ):
        _export(tmp_path, tokenizer_path, model, _spec(vocab))


def test_a_tagger_of_other_labels_is_refused(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    with pytest.raises(SpecMismatchError, match=r"last dimension must be len\(labels\) = 3"):
        _export(tmp_path, tokenizer_path, _tagger(vocab, units=5), _spec(vocab))


def test_a_fixed_length_tagger_shorter_than_max_tokens_is_refused(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    with pytest.raises(SpecMismatchError, match=r"exactly 8 ids, fewer than the spec's max_tokens"):
        _export(tmp_path, tokenizer_path, _tagger(vocab, length=8), _spec(vocab))


def test_an_output_of_other_positions_than_the_input_is_refused(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    import keras

    ids = keras.Input((20,), dtype="int32", name="text_ids")
    embedded = keras.layers.Embedding(vocab, 4)(ids)[:, :18]  # drops the last two positions
    model = keras.Model({"text_ids": ids}, {"tags": keras.layers.Dense(3, "softmax")(embedded)})
    with pytest.raises(SpecMismatchError, match=r"second dimension must be one per id of input"):
        _export(tmp_path, tokenizer_path, model, _spec(vocab))


def test_a_tagger_ending_in_logits_is_refused(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    with pytest.raises(
        SpecMismatchError, match=r"tags \(token_labels\).*end the model with a softmax"
    ):
        _export(tmp_path, tokenizer_path, _tagger(vocab, activation=None), _spec(vocab))


def test_a_time_distributed_tagger_is_refused_naming_the_positions_needed(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Found by newuser7: Keras 3's TimeDistributed(Dense) gives [batch, batch, n] in a
    # signature of unknown length; the refusal said "is float32[2, 2, 3] for the example; the
    # spec needs float32[2, 2, 3] with at least the 7 ids sent per row".
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    embedded = keras.layers.Embedding(vocab, 4, mask_zero=True)(ids)
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model({"text_ids": ids}, {"tags": keras.layers.TimeDistributed(dense)(embedded)})
    with pytest.raises(SpecMismatchError) as caught:
        _export(tmp_path, tokenizer_path, model, _spec(vocab))
    message = str(caught.value)
    assert "is float32[2, 2, 3] for the example; the spec needs float32[2, 2, 3]" not in message
    assert re.search(r"the spec needs float32\[2, (\d+), 3\] \(at least the \1 ids sent", message)
    assert "drop the TimeDistributed" in message


def test_a_batch_of_requests_padded_together_answers_each_row_as_alone(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # The local model server's batching (and the gateway's coalescing) merge requests of
    # other widths with serving.tensor_batches and slice the outputs back by rows: a rank-3
    # output keeps the merged width, and each row's positions must be its own.
    import numpy as np
    import tensorflow as tf

    from serving.modelserver.packing import splittable
    from serving.tensor_batches import merge_inputs, split_outputs

    spec = _spec(vocab, padding="left")
    folder = _export(tmp_path, tokenizer_path, _tagger(vocab), spec)
    function = tf.saved_model.load(str(folder)).signatures["serving_default"]
    requests = [
        {"text_ids": np.array([[5, 6, 7]], np.int32)},
        {"text_ids": np.array([[9, 0], [4, 5]], np.int32)},
        {"text_ids": np.array([[8, 7, 6, 5, 4, 3]], np.int32)},
    ]
    merged = merge_inputs(requests, pad=True)
    outputs = {"tags": function(text_ids=tf.constant(merged["text_ids"]))["tags"].numpy()}
    for request, part in zip(requests, split_outputs(outputs, [1, 2, 1]), strict=True):
        own = function(text_ids=tf.constant(request["text_ids"]))["tags"].numpy()
        width = own.shape[1]
        assert part["tags"].shape == (len(own), 6, 3)
        mask = request["text_ids"] != 0  # positions of ids (padding is never read)
        np.testing.assert_allclose(part["tags"][:, :width][mask], own[mask], atol=1e-6)
    # Its outputs have an unknown width: the model server never splits such a batch by length.
    assert not splittable([(-1, -1)], [True], [(-1, -1, 3)])


def test_the_tiny_model_for_any_spec_serves_a_token_head(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    from training.tiny_models import spec_model

    spec = _spec(vocab)
    assert (_export(tmp_path, tokenizer_path, spec_model(spec), spec) / "saved_model.pb").exists()
