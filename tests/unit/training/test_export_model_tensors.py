"""export_for_serving with models whose tensors do not fit the gateway's batches of token ids:
refused with a message naming the input or head (found by the anymodel3 adversarial pass),
instead of being exported and then failing at request time or answering wrongly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serving.spec import CategoricalHead, ScoreHead, ServingSpec, TextInput
from training.export import SpecMismatchError, export_for_serving


def _spec(vocab: int, head: Any) -> ServingSpec:
    return ServingSpec(
        title="t",
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=16, vocab_size=vocab)],
        heads=[head],
        example={"text": "the cat sat on the mat."},
    )


PROBS = CategoricalHead(output="probs", field="label", labels=["a", "b", "c"])


def _pooled(ids: Any, vocab: int) -> Any:
    import keras

    from training.layers import MaskedMeanPooling

    keras.utils.set_random_seed(5)
    as_ids = keras.ops.cast(ids, "int32") if ids.dtype != "int32" else ids
    return MaskedMeanPooling()(keras.layers.Embedding(vocab, 4)(as_ids), as_ids)


def _export(tmp_path: Path, tokenizer_path: Path, model: Any, spec: ServingSpec) -> Path:
    return export_for_serving(
        model, spec, {"tokenizer.json": tokenizer_path}, name="m", repo=tmp_path / "repo"
    )


def _batch_reduced(vocab: int, scalar: bool) -> Any:
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    if scalar:  # a sum over the batch axis: shape (1,), read as [batch] by the spec
        out = keras.ops.sum(keras.layers.Dense(1, activation="sigmoid")(_pooled(ids, vocab)), 0)
        return keras.Model({"text_ids": ids}, {"score": out})
    probs = keras.layers.Dense(3, activation="softmax")(_pooled(ids, vocab))
    return keras.Model({"text_ids": ids}, {"probs": keras.ops.mean(probs, 0, keepdims=True)})


@pytest.mark.parametrize("scalar", [True, False])
def test_refuses_an_output_without_a_row_per_instance(
    tmp_path: Path, tokenizer_path: Path, vocab: int, scalar: bool
) -> None:
    # Reduced over the batch axis: one row whatever the batch. The export's check ran the
    # example alone (1 row, as expected) and the gateway routed it; every request of 2
    # instances (or one batched with another) was then a 502 "unusable answer".
    head = ScoreHead(output="score", field="score") if scalar else PROBS
    with pytest.raises(SpecMismatchError, match="gives 1 rows for a batch of 2 instances"):
        _export(tmp_path, tokenizer_path, _batch_reduced(vocab, scalar), _spec(vocab, head))
    assert not (tmp_path / "repo" / "m").exists() or not any((tmp_path / "repo" / "m").iterdir())


def test_refuses_a_head_output_name_several_outputs_share(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # One Dense layer called twice gives two outputs both named "dense" (Keras names a list
    # output by its layer): the name meant whichever came last, served silently.
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    dense = keras.layers.Dense(3, activation="softmax", name="shared")
    pooled = _pooled(ids, vocab)
    model = keras.Model({"text_ids": ids}, [dense(pooled), dense(pooled * 2.0)])
    assert model.output_names == ["shared", "shared"]
    head = PROBS.model_copy(update={"output": "shared"})
    with pytest.raises(SpecMismatchError, match="2 model outputs are named 'shared'"):
        _export(tmp_path, tokenizer_path, model, _spec(vocab, head))


def _input_model(vocab: int, shape: tuple[Any, ...], dtype: str) -> Any:
    import keras

    ids = keras.Input(shape, dtype=dtype, name="text_ids")
    if dtype == "string":  # a model that tokenises raw text itself
        vectorize = keras.layers.TextVectorization(max_tokens=vocab)
        vectorize.adapt(["the cat sat on the mat"])
        tokens = vectorize(ids)
    else:
        tokens = keras.layers.Reshape((1,))(ids) if not shape else ids
    probs = keras.layers.Dense(3, activation="softmax")(_pooled(tokens, vocab))
    return keras.Model({"text_ids": ids}, {"probs": probs})


@pytest.mark.parametrize(
    ("shape", "dtype", "message"),
    [
        # were raw Keras ValueErrors from the export's trace ("Invalid input shape for input
        # Tensor(...) with name 'text_ids' ..."), naming neither the spec's input nor the rule
        ((), "int32", r"takes shape \(None,\); the spec's inputs are token-id matrices"),
        ((), "string", "takes string values; the spec's inputs are token ids"),
        # were exported: ids above 255 wrapped around in the cast to uint8 (other words)
        ((None,), "uint8", "uint8 holds ids up to 255, below vocab_size - 1"),
        ((None,), "bool", "takes bool values; the spec's inputs are token ids"),
    ],
)
def test_refuses_inputs_that_are_no_token_id_matrices(
    tmp_path: Path, tokenizer_path: Path, vocab: int, shape: Any, dtype: str, message: str
) -> None:
    # 300 ids: more than a uint8 holds
    spec = _spec(vocab, PROBS).model_copy(
        update={"inputs": [TextInput(field="text", tensor="text_ids", max_tokens=16,
                                     vocab_size=300)]}
    )  # fmt: skip
    with pytest.raises(SpecMismatchError, match=f"input 'text': .*{message}"):
        _export(tmp_path, tokenizer_path, _input_model(300, shape, dtype), spec)


def test_refuses_a_model_with_fewer_positions_than_max_tokens(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # A learned position embedding of 8 rows under max_tokens 32: the short example passed,
    # the version was routed, and every text of more than 8 tokens was a 502 ("the model
    # server rejected the inputs the gateway built": indices[8] = 8 is not in [0, 8)).
    import keras

    class Positions(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self, rows: int) -> None:
            super().__init__()
            self.table = keras.layers.Embedding(rows, 4)

        def call(self, vectors: Any) -> Any:
            return vectors + self.table(keras.ops.arange(keras.ops.shape(vectors)[1]))

    def model(rows: int) -> Any:
        from training.layers import MaskedMeanPooling

        keras.utils.set_random_seed(5)
        ids = keras.Input((None,), dtype="int32", name="text_ids")
        vectors = Positions(rows)(keras.layers.Embedding(vocab, 4)(ids))
        probs = keras.layers.Dense(3, activation="softmax")(MaskedMeanPooling()(vectors, ids))
        return keras.Model({"text_ids": ids}, {"probs": probs})

    spec = _spec(vocab, PROBS)
    longer = spec.inputs[0].model_copy(update={"max_tokens": 32})
    spec = spec.model_copy(update={"inputs": [longer], "example": {"text": "the cat"}})
    with pytest.raises(SpecMismatchError, match="input 'text': the model fails on a row of max"):
        _export(tmp_path, tokenizer_path, model(8), spec)
    assert _export(tmp_path, tokenizer_path, model(32), spec).is_dir()  # as many as it takes


@pytest.mark.parametrize("rows", [200, 0])
def test_refuses_special_token_ids_beyond_vocab_size(
    tmp_path: Path, tokenizer_path: Path, vocab: int, rows: int
) -> None:
    # A post-processor template given BERT's ids ("[CLS]", 101), ("[SEP]", 102) on a small
    # vocabulary: the ids are no vocabulary entry, so the vocab_size check missed them. With an
    # embedding of vocab_size rows the export failed with TensorFlow's InvalidArgumentError
    # (indices[0,0] = 101 is not in [0, V)); with a larger one it was exported and the gateway
    # sent ids the spec says never come (the gateway's own check of vocab_size passed too).
    import keras
    from tokenizers import processors

    from serving.tokenization import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_path)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 101), ("[SEP]", 102)]
    )
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    ids = keras.Input((None,), dtype="int32", name="text_ids")
    probs = keras.layers.Dense(3, activation="softmax")(_pooled(ids, rows or vocab))
    model = keras.Model({"text_ids": ids}, {"probs": probs})
    with pytest.raises(SpecMismatchError, match="gives ids up to 102, beyond the spec's vocab"):
        _export(tmp_path, tmp_path / "tokenizer.json", model, _spec(vocab, PROBS))
    # without special tokens, the input never gets them: served
    plain = _spec(vocab, PROBS).inputs[0].model_copy(update={"add_special_tokens": False})
    spec = _spec(vocab, PROBS).model_copy(update={"inputs": [plain]})
    assert _export(tmp_path, tmp_path / "tokenizer.json", model, spec).is_dir()


def test_refuses_a_float_feature_input_saying_why(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # A text model that also takes a number (the price beside a review): refused, but the
    # message only listed both input sets, not that a non-text input cannot be served.
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    price = keras.Input((1,), dtype="float32", name="price")
    features = keras.layers.Concatenate()([_pooled(ids, vocab), price])
    probs = keras.layers.Dense(3, activation="softmax")(features)
    model = keras.Model({"text_ids": ids, "price": price}, {"probs": probs})
    with pytest.raises(SpecMismatchError, match=r"\['price'\] are not in the spec, whose inputs"):
        _export(tmp_path, tokenizer_path, model, _spec(vocab, PROBS))


def test_a_misnamed_spec_tensor_is_named_with_the_closest_model_input(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Found as a new user: TextInput(tensor="text") for the model input "text_ids" was told
    # that ['text_ids'] "are not in the spec, whose inputs are texts only (a model that also
    # takes other features ...)", as if the model took a feature, and not which spec name
    # was wrong.
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    probs = keras.layers.Dense(3, activation="softmax")(_pooled(ids, vocab))
    model = keras.Model({"text_ids": ids}, {"probs": probs})
    spec = _spec(vocab, PROBS)
    wrong = spec.model_copy(
        update={"inputs": [spec.inputs[0].model_copy(update={"tensor": "text"})]}
    )
    with pytest.raises(SpecMismatchError) as caught:
        _export(tmp_path, tokenizer_path, model, wrong)
    message = str(caught.value)
    assert "the spec's tensor 'text' is no model input (did you mean 'text_ids'?)" in message
    assert "texts only" not in message and not (tmp_path / "repo" / "m").exists()


def test_a_per_token_output_under_a_categorical_head_is_refused_naming_token_heads(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Found as a new user: a token tagger's [batch, length, 3] softmax as a categorical head
    # was told only "the spec needs [batch, 3]"; the token_labels head kind now reads one.
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    embedded = keras.layers.Embedding(vocab, 4, mask_zero=True)(ids)
    tags = keras.layers.Dense(3, activation="softmax")(embedded)
    model = keras.Model({"text_ids": ids}, {"probs": tags})
    with pytest.raises(SpecMismatchError, match=r"an output per token .* is a token_labels head"):
        _export(tmp_path, tokenizer_path, model, _spec(vocab, PROBS))
