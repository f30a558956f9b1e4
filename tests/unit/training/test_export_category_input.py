"""A text model that also takes an integer feature (a category id: a review's country) is
served with that feature as a text input whose tokenizer maps each value's name to its id, as
the export's refusal of the bare model says (found by newuser7: it said such a model "cannot be
served")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.encoding import encode_instances
from serving.spec import CategoricalHead, ServingSpec, TextInput
from serving.tokenization import load_tokenizer
from training.export import SpecMismatchError, export_for_serving

COUNTRIES = {"[PAD]": 0, "[UNK]": 1, "fr": 2, "de": 3, "us": 4}
HEAD = CategoricalHead(output="probs", field="label", labels=["a", "b", "c"])
TEXT = TextInput(field="text", tensor="text_ids", max_tokens=16, vocab_size=1)


def _model(vocab: int) -> Any:
    import keras

    keras.utils.set_random_seed(7)
    ids = keras.Input((None,), dtype="int32", name="text_ids")
    country = keras.Input((1,), dtype="int32", name="country_id")
    text = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(vocab, 4, mask_zero=True)(ids)
    )
    place = keras.layers.Flatten()(keras.layers.Embedding(len(COUNTRIES), 4)(country))
    probs = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([text, place]))
    return keras.Model({"text_ids": ids, "country_id": country}, {"probs": probs})


def test_an_integer_feature_outside_the_spec_is_refused_naming_the_way_to_serve_it(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    spec = ServingSpec(
        title="t",
        inputs=[TEXT.model_copy(update={"vocab_size": vocab})],
        heads=[HEAD],
        example={"text": "the cat sat on the mat."},
    )
    with pytest.raises(SpecMismatchError) as caught:
        export_for_serving(
            _model(vocab), spec, {"tokenizer.json": tokenizer_path}, name="m", repo=tmp_path
        )
    message = str(caught.value)
    assert "['country_id'] are not in the spec" in message
    assert "served as a TextInput whose tokenizer maps each value's name to its id" in message
    assert "cannot be served: compute" not in message


def test_an_integer_feature_is_served_as_a_text_input_of_its_own_tokenizer(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    import tensorflow as tf
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    countries = Tokenizer(WordLevel(COUNTRIES, unk_token="[UNK]"))
    countries.normalizer = normalizers.Lowercase()
    countries.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    countries.save(str(tmp_path / "country.json"))
    country = TextInput(
        field="country",
        tensor="country_id",
        tokenizer="country.json",
        max_tokens=1,
        vocab_size=len(COUNTRIES),
    )
    spec = ServingSpec(
        title="t",
        inputs=[TEXT.model_copy(update={"vocab_size": vocab}), country],
        heads=[HEAD],
        example={"text": "the cat sat on the mat.", "country": "DE"},
    )
    model = _model(vocab)
    files = {"tokenizer.json": tokenizer_path, "country.json": tmp_path / "country.json"}
    version = export_for_serving(model, spec, files, name="m", repo=tmp_path / "repo")
    loaded = {name: load_tokenizer(path) for name, path in files.items()}
    ids = encode_instances(spec, loaded, [spec.example])
    assert ids["country_id"].tolist() == [[COUNTRIES["de"]]]
    served = tf.saved_model.load(str(version)).signatures["serving_default"](
        **{name: tf.constant(value) for name, value in ids.items()}
    )["probs"]
    expected = model.predict({name: np.asarray(value) for name, value in ids.items()}, verbose=0)
    np.testing.assert_allclose(served.numpy(), expected["probs"], rtol=1e-5)
