"""A real SavedModel whose answers change with padding is unfit; a masked one is routed.

Batching pads each request to its batch's longest (the model server's batching, the
gateway's coalescing), so a model that averages over pad ids would answer a request
differently depending on its neighbours. The fit check runs the spec's example padded
further (``serving.gateway.checks.check_padding``): here against two real Keras exports run
in-process (the ``local`` backend), one pooling with the pad mask and one without.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.contract import TOKENIZER_FILE
from serving.gateway.backends.local_backend import LocalBackend
from serving.gateway.checks import check_fit
from serving.gateway.runtime import UnfitVersionError, load_runtime
from serving.gateway.settings import GatewaySettings
from serving.spec import CategoricalHead, ServingSpec, TextInput

pytestmark = pytest.mark.slow
LABELS = ["calm", "angry"]
CORPUS = ["the sea is calm today", "he shouted in anger", "a quiet calm morning"]


def export(repo: Path, tokenizer: Path, name: str, masked: bool) -> None:
    """One text input -> one categorical head; mean pooling with or without the pad mask."""
    import keras

    from training.export import export_for_serving
    from training.layers import MaskedMeanPooling

    keras.utils.set_random_seed(5)
    spec = ServingSpec(
        title="Tiny mood",
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=16, vocab_size=32)],
        heads=[CategoricalHead(output="mood_probs", field="mood", labels=LABELS)],
        example={"text": "the sea is calm"},
    )
    ids = keras.Input((None,), dtype="int32", name="text_ids")
    vectors = keras.layers.Embedding(32, 4)(ids)
    if masked:
        pooled = MaskedMeanPooling()(vectors, ids)
    else:
        pooled = keras.layers.GlobalAveragePooling1D()(vectors)  # pad rows counted in the mean
    probs = keras.layers.Dense(len(LABELS), activation="softmax", name="mood_probs")(pooled)
    model = keras.Model({"text_ids": ids}, {"mood_probs": probs})
    export_for_serving(model, spec, {TOKENIZER_FILE: tokenizer}, name=name, repo=repo, version=1)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.tokenization import train_tokenizer

    root = tmp_path_factory.mktemp("pad_invariance")
    tokenizer = root / TOKENIZER_FILE
    train_tokenizer(CORPUS, vocab_size=32).save(str(tokenizer))
    export(root / "repo", tokenizer, "masked", masked=True)
    export(root / "repo", tokenizer, "unmasked", masked=False)
    return root / "repo"


def test_a_model_that_masks_its_padding_fits(repo: Path) -> None:
    check_fit(LocalBackend(repo), load_runtime(repo, "masked", 1, GatewaySettings()))


def test_a_model_that_averages_over_its_padding_is_unfit(repo: Path) -> None:
    runtime = load_runtime(repo, "unmasked", 1, GatewaySettings())
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(LocalBackend(repo), runtime)
    assert "mood_probs changes when the inputs are padded further" in caught.value.reason
