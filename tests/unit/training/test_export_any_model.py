"""export_for_serving with unusual but legitimate models: refused clearly (naming the field)
when the gateway could not serve them, exported so that it answers as Keras does otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from serving.encoding import encode_instances
from serving.spec import CategoricalHead, ServingSpec, TextInput, Truncation
from serving.tokenization import load_tokenizer
from tests.support.tokenizer_faults import PANICKING_POST_PROCESSOR
from training.export import SpecMismatchError, export_for_serving
from training.tiny_models import spec_model


def _tokenizer_file(folder: Path, special: bool = False, unknown: bool = True) -> Path:
    """A word-level tokenizer: without [UNK] if not ``unknown``, with a [CLS] $A [SEP]
    post-processor if ``special``."""
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    vocab = {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "the": 3, "cat": 4, "[UNK]": 5}
    if not unknown:
        del vocab["[UNK]"]
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]" if unknown else None))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if special:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
        )
    path = folder / f"tokenizer-{special}-{unknown}.json"
    tokenizer.save(str(path))
    return path


@pytest.mark.parametrize(
    ("max_tokens", "example", "special", "unknown", "message"),
    [
        # was exported, then every request with a word outside the vocabulary was a 500
        (8, "the cat", False, False, "fails on words outside its vocabulary"),
        # was exported (2) or an OverflowError (1): the model could read [CLS] [SEP] only
        (2, "the cat", True, True, "max_tokens 2 leaves no token for text beside the 2"),
        (1, "the cat", True, True, "max_tokens 1 leaves no token"),
        # was exported, and the gateway never routed it (no word) or /docs offered it refused
        (8, "? ?", False, True, "example text has no word for its tokenizer"),
        (3, "? ? ? the cat", False, True, "example text has no word within what the model"),
    ],
)
def test_refuses_inputs_the_gateway_could_not_serve(
    tmp_path: Path, max_tokens: int, example: str, special: bool, unknown: bool, message: str
) -> None:
    tokenizer = _tokenizer_file(tmp_path, special, unknown)
    spec = ServingSpec(
        title="t",
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=max_tokens, vocab_size=6)],
        heads=[CategoricalHead(output="probs", field="label", labels=["a", "b"])],
        example={"text": example},
    )
    with pytest.raises(SpecMismatchError, match=message):
        export_for_serving(
            spec_model(spec), spec, {"tokenizer.json": tokenizer}, name="d", repo=tmp_path / "r"
        )
    assert not (tmp_path / "r" / "d").exists()


def test_refuses_an_input_tensor_name_tensorflow_refuses(tmp_path: Path, tokenizer_path: Path):
    # The spec allows "_text_ids"; TensorFlow failed the export with its own ValueError
    # ("Got non-flat/non-unique argument names for SavedModel signature") naming no field.
    spec = _one_text_spec(16, load_tokenizer(tokenizer_path).get_vocab_size())
    inputs = [spec.inputs[0].model_copy(update={"tensor": "_text_ids"})]
    spec = spec.model_copy(update={"inputs": inputs})
    with pytest.raises(SpecMismatchError, match="input 'text': tensor '_text_ids' cannot name"):
        export_for_serving(
            spec_model(spec), spec, {"tokenizer.json": tokenizer_path}, name="d", repo=tmp_path
        )


def _fixed_length_model(length: int, vocab: int) -> Any:
    """A classic fixed-length model: ``Input((length,))``, Embedding, Flatten, Dense."""
    import keras

    keras.utils.set_random_seed(3)
    ids = keras.Input((length,), dtype="int32", name="text_ids")
    flat = keras.layers.Flatten()(keras.layers.Embedding(vocab, 4)(ids))
    probs = keras.layers.Dense(2, activation="softmax", name="probs")(flat)
    return keras.Model({"text_ids": ids}, {"probs": probs})


def _one_text_spec(max_tokens: int, vocab: int, padding: Truncation = "right") -> ServingSpec:
    text = TextInput(
        field="text", tensor="text_ids", max_tokens=max_tokens, vocab_size=vocab, padding=padding
    )
    return ServingSpec(
        title="t",
        inputs=[text],
        heads=[CategoricalHead(output="probs", field="label", labels=["a", "b"])],
        example={"text": "the cat sat on the mat."},
    )


def test_a_fixed_length_input_is_padded_to_its_length(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # The gateway sends rows as long as a batch's longest text: the Flatten's Dense got
    # [1, 28] instead of [1, 64] and the export failed with TensorFlow's InvalidArgumentError.
    spec = _one_text_spec(16, vocab)
    model = _fixed_length_model(16, vocab)
    version = export_for_serving(
        model, spec, {"tokenizer.json": tokenizer_path}, name="fixed", repo=tmp_path
    )
    ids = encode_instances(spec, {"tokenizer.json": load_tokenizer(tokenizer_path)}, [spec.example])
    assert ids["text_ids"].shape[1] < 16
    served = tf.saved_model.load(str(version)).signatures["serving_default"](
        text_ids=tf.constant(ids["text_ids"])
    )["probs"]
    padded = np.pad(ids["text_ids"], [(0, 0), (0, 16 - ids["text_ids"].shape[1])])
    expected = model.predict({"text_ids": padded}, verbose=0)["probs"]
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-5)


def test_a_model_trained_on_left_padding_reads_left_padding(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Keras's pad_sequences pads on the left ("pre") by default: a Flatten model trained so
    # was served right-padded rows, answering unlike Keras with no error (the spec had no
    # way to say the side).
    import keras

    spec = _one_text_spec(16, vocab, padding="left")
    model = _fixed_length_model(16, vocab)
    tokenizers = {"tokenizer.json": tokenizer_path}
    version = export_for_serving(model, spec, tokenizers, name="left", repo=tmp_path)
    texts = [{"text": "the cat sat on the mat."}, {"text": "where is the dog?"}]
    ids = encode_instances(spec, {"tokenizer.json": load_tokenizer(tokenizer_path)}, texts)
    rows = [[token for token in row if token != spec.pad_id] for row in ids["text_ids"].tolist()]
    trained = keras.utils.pad_sequences(rows, maxlen=16)  # padding="pre", as it trained
    expected = model.predict({"text_ids": trained}, verbose=0)["probs"]
    right = keras.utils.pad_sequences(rows, maxlen=16, padding="post")
    assert not np.allclose(model.predict({"text_ids": right}, verbose=0)["probs"], expected)
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    batched = np.pad(ids["text_ids"], [(0, 0), (0, 3)])  # padded further, as batching does
    for sent in (ids["text_ids"], batched):
        served = signature(text_ids=tf.constant(sent))["probs"].numpy()
        np.testing.assert_allclose(served, expected, rtol=1e-5)


def test_a_left_padded_model_of_any_length_reading_positions_is_told_to_fix_it(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # A model reading its first position (as position embeddings do) moves with the batch's
    # length when its text is left-padded; "the model must mask its padding" did not name the
    # fixed length that works.
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    first = keras.layers.Embedding(vocab, 4)(ids[:, 0])
    model = keras.Model(ids, {"probs": keras.layers.Dense(2, activation="softmax")(first)})
    with pytest.raises(SpecMismatchError, match=r"\['text'\] start later in a longer batch"):
        export_for_serving(
            model,
            _one_text_spec(16, vocab, padding="left"),
            {"tokenizer.json": tokenizer_path},
            name="gru",
            repo=tmp_path,
        )


def test_refuses_a_fixed_length_shorter_than_max_tokens(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    with pytest.raises(SpecMismatchError, match="takes exactly 16 ids, fewer than the spec's"):
        export_for_serving(
            _fixed_length_model(16, vocab),
            _one_text_spec(17, vocab),
            {"tokenizer.json": tokenizer_path},
            name="fixed",
            repo=tmp_path,
        )


def test_a_sequential_model_is_served(tmp_path: Path, tokenizer_path: Path, vocab: int) -> None:
    # A Sequential model has no output_names and its .input raises: the export stopped with
    # AttributeError "The layer sequential has never been called and thus has no defined input".
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32", name="text_ids"),
            keras.layers.Embedding(vocab, 4, mask_zero=True),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2, activation="softmax", name="probs"),
        ]
    )
    spec = _one_text_spec(16, vocab)
    version = export_for_serving(
        model, spec, {"tokenizer.json": tokenizer_path}, name="seq", repo=tmp_path
    )
    ids = encode_instances(spec, {"tokenizer.json": load_tokenizer(tokenizer_path)}, [spec.example])
    served = tf.saved_model.load(str(version)).signatures["serving_default"](
        text_ids=tf.constant(ids["text_ids"])
    )["probs"]
    np.testing.assert_allclose(served.numpy(), model.predict(ids["text_ids"], verbose=0), rtol=1e-5)
    unbuilt = keras.Sequential([keras.layers.Embedding(vocab, 4), keras.layers.Dense(2)])
    with pytest.raises(SpecMismatchError, match=r"Sequential model '\w+' has no inputs yet"):
        export_for_serving(
            unbuilt, spec, {"tokenizer.json": tokenizer_path}, name="seq", repo=tmp_path
        )


def test_refuses_logits_where_a_head_reads_probabilities(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # A categorical head on a Dense without softmax (trained with from_logits=True) was
    # exported and answered "probability": 1.9988 and -1.0012.
    import keras

    keras.utils.set_random_seed(3)
    ids = keras.Input((None,), dtype="int32", name="text_ids")
    pooled = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(vocab, 4, mask_zero=True)(ids)
    )
    logits = keras.layers.Dense(2, name="probs", bias_initializer="ones")(pooled)
    model = keras.Model({"text_ids": ids}, {"probs": logits})
    with pytest.raises(SpecMismatchError, match=r"head label \(categorical\): output probs"):
        export_for_serving(
            model,
            _one_text_spec(16, vocab),
            {"tokenizer.json": tokenizer_path},
            name="l",
            repo=tmp_path,
        )


def test_refuses_a_pad_id_outside_the_vocabulary(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # The export's padding probe stopped with TensorFlow's InvalidArgumentError
    # ("indices[0,3] = V is not in [0, V)") naming neither pad_id nor an input.
    spec = _one_text_spec(16, vocab).model_copy(update={"pad_id": vocab})
    with pytest.raises(SpecMismatchError, match=f"pad_id {vocab} is no id of input text"):
        export_for_serving(
            _fixed_length_model(16, vocab),
            spec,
            {"tokenizer.json": tokenizer_path},
            name="p",
            repo=tmp_path,
        )


def test_refuses_a_post_processor_that_panics(tmp_path: Path, tokenizer_path: Path, vocab: int):
    # Found by the anymodel3 pass: a template naming a special token the file lacks panics on
    # every encode with special tokens; the panic (pyo3_runtime.PanicException, a
    # BaseException: "no entry found for key") escaped export_for_serving past any `except
    # Exception`, naming neither the tokenizer nor the cause.
    import json

    data = json.loads(tokenizer_path.read_text())
    data["post_processor"] = PANICKING_POST_PROCESSOR
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    spec = _one_text_spec(16, vocab)
    with pytest.raises(SpecMismatchError, match=r"tokenizer\.json's post-processor fails on every"):
        export_for_serving(
            spec_model(spec), spec, {"tokenizer.json": broken}, name="p", repo=tmp_path / "r"
        )
    plain = spec.inputs[0].model_copy(update={"add_special_tokens": False})  # never runs it
    spec = spec.model_copy(update={"inputs": [plain]})
    export_for_serving(
        spec_model(spec), spec, {"tokenizer.json": broken}, name="p", repo=tmp_path / "r"
    )
