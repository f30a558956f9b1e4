"""A SavedModel whose answers change with padding is refused at export and unfit to serve.

Batching pads each request to its batch's longest (the model server's batching, the
gateway's coalescing), so a model that averages over pad ids would answer a request
differently depending on its neighbours. ``export_for_serving`` refuses such a model (its
smoke check runs the example padded further), and the gateway's fit check does the same for
a version that got into the repo otherwise (``serving.gateway.checks.check_padding``): here
with real Keras exports run in-process (the ``local`` backend). So does a model that takes
fewer positions than its spec's ``max_tokens`` (``check_longest``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serving.contract import ASSETS_DIR, TOKENIZER_FILE
from serving.gateway.backends.local_backend import LocalBackend
from serving.gateway.checks import check_fit
from serving.gateway.runtime import UnfitVersionError, load_runtime
from serving.gateway.settings import GatewaySettings
from serving.spec import SPEC_FILE, CategoricalHead, ServingSpec, TextInput, dump_spec, load_spec
from training.spec_check import SpecMismatchError

pytestmark = pytest.mark.slow
LABELS = ["calm", "angry"]
CORPUS = ["the sea is calm today", "he shouted in anger", "a quiet calm morning"]


def export(repo: Path, tokenizer: Path, name: str, masked: bool, pad_id: int = 0) -> None:
    """One text input -> one categorical head; mean pooling with or without the pad mask
    (with ``pad_id`` 1, the model masks 1 and reads 0 as a word)."""
    import keras

    from training.export import export_for_serving
    from training.layers import MaskedMeanPooling

    keras.utils.set_random_seed(5)
    spec = ServingSpec(
        title="Tiny mood",
        pad_id=pad_id,
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=16, vocab_size=32)],
        heads=[CategoricalHead(output="mood_probs", field="mood", labels=LABELS)],
        example={"text": "the sea is calm"},
    )
    ids = keras.Input((None,), dtype="int32", name="text_ids")
    read = swap_zero_and_one(ids) if pad_id == 1 else ids
    vectors = keras.layers.Embedding(32, 4)(read)
    if masked:
        pooled = MaskedMeanPooling()(vectors, read)
    else:
        pooled = keras.layers.GlobalAveragePooling1D()(vectors)  # pad rows counted in the mean
    probs = keras.layers.Dense(len(LABELS), activation="softmax", name="mood_probs")(pooled)
    model = keras.Model({"text_ids": ids}, {"mood_probs": probs})
    export_for_serving(model, spec, {TOKENIZER_FILE: tokenizer}, name=name, repo=repo, version=1)


def swap_zero_and_one(ids: Any) -> Any:
    """Ids 0 and 1 swapped (keras or tf ops alike): a model masking 0 then masks 1 only."""
    import keras

    ops = keras.ops
    return ops.where(ops.equal(ids, 1), 0, ops.where(ops.equal(ids, 0), 1, ids))


def pad_one_tokenizer(path: Path) -> Path:
    """A word-level tokenizer whose [PAD] is 1 and whose 0 is [MASK], a special token no text
    is encoded to: either may pad (with [UNK] at 1, pad_id 1 made every text of unknown words
    all padding, which ``serving.spec_tokenizers.pad_problem`` refuses)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    special = ["[MASK]", "[PAD]", "[UNK]"]
    tokenizer.train_from_iterator(
        CORPUS, trainers.WordLevelTrainer(vocab_size=32, special_tokens=special)
    )
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pad_invariance")
    tokenizer = pad_one_tokenizer(root / TOKENIZER_FILE)
    export(root / "repo", tokenizer, "masked", masked=True)
    export(root / "repo", tokenizer, "shifted", masked=True)
    shift_by_width(root / "repo" / "shifted" / "1")
    export(root / "repo", tokenizer, "pad-one", masked=True)
    mask_one_only(root / "repo" / "pad-one" / "1")
    for name, nan in (("short", False), ("short-nan", True)):
        export(root / "repo", tokenizer, name, masked=True)
        positions_up_to(root / "repo" / name / "1", 8, nan)
    return root / "repo"


def positions_up_to(path: Path, rows: int, nan: bool) -> None:
    """Save the version again with a signature that reads a position table of ``rows`` rows
    (under the spec's max_tokens 16): a longer row fails (a gather out of range), or answers
    NaN with ``nan``, as a model with fewer positions than its spec says would."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    original = loaded.signatures["serving_default"]

    def short(text_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        probs = original(text_ids=text_ids)["mood_probs"]
        width = tf.shape(text_ids)[1]
        if nan:
            return {"mood_probs": tf.where(width > rows, probs * float("nan"), probs)}
        offset = tf.reduce_sum(tf.gather(tf.zeros([rows]), tf.range(width)))
        return {"mood_probs": probs + offset}

    ids = tf.TensorSpec([None, None], tf.int32, name="text_ids")
    function = tf.function(short, input_signature=[ids])
    tf.saved_model.save(loaded, str(path), signatures={"serving_default": function})


def mask_one_only(path: Path) -> None:
    """Save the version again reading 0 as a word and masking 1, with the spec's pad_id 1 (as
    a tokenizer whose [PAD] is 1 would be served): the model server's batching pads with 0."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    original = loaded.signatures["serving_default"]

    def swapped(text_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"mood_probs": original(text_ids=swap_zero_and_one(text_ids))["mood_probs"]}

    ids = tf.TensorSpec([None, None], tf.int32, name="text_ids")
    function = tf.function(swapped, input_signature=[ids])
    tf.saved_model.save(loaded, str(path), signatures={"serving_default": function})
    spec_file = path / ASSETS_DIR / SPEC_FILE
    spec_file.write_text(dump_spec(load_spec(spec_file).model_copy(update={"pad_id": 1})))


def shift_by_width(path: Path) -> None:
    """Save the version again with a signature whose answer moves with the input's width, as
    a mean over the pad ids would (assets kept)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    original = loaded.signatures["serving_default"]

    def shifted(text_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        probs = original(text_ids=text_ids)["mood_probs"]
        width = tf.cast(tf.shape(text_ids)[1], tf.float32)
        shift = tf.stack([0.05 * width, 0.0])  # the first label gains with every column
        return {"mood_probs": tf.nn.softmax(tf.math.log(probs) + shift)}

    ids = tf.TensorSpec([None, None], tf.int32, name="text_ids")
    function = tf.function(shifted, input_signature=[ids])
    tf.saved_model.save(loaded, str(path), signatures={"serving_default": function})


def test_export_refuses_a_model_that_averages_over_its_padding(tmp_path: Path) -> None:
    from training.tokenization import train_tokenizer

    tokenizer = tmp_path / TOKENIZER_FILE
    train_tokenizer(CORPUS, vocab_size=32).save(str(tokenizer))
    with pytest.raises(SpecMismatchError, match="changes when the inputs are padded further"):
        export(tmp_path / "repo", tokenizer, "unmasked", masked=False)


def test_a_model_that_masks_its_padding_fits(repo: Path) -> None:
    check_fit(LocalBackend(repo), load_runtime(repo, "masked", 1, GatewaySettings()))


def test_a_version_whose_answers_move_with_padding_is_unfit(repo: Path) -> None:
    runtime = load_runtime(repo, "shifted", 1, GatewaySettings())
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(LocalBackend(repo), runtime)
    assert "mood_probs changes when the inputs are padded further" in caught.value.reason


def test_export_refuses_a_model_that_reads_the_model_servers_pad_id(tmp_path: Path) -> None:
    # pad_id 1, and the model masks 1 only: the spec's probe passed and it was exported, yet
    # the local model server's batching pads with 0, a word to this model.
    tokenizer = pad_one_tokenizer(tmp_path / TOKENIZER_FILE)
    with pytest.raises(SpecMismatchError, match="padded further with 0, as the model server"):
        export(tmp_path / "repo", tokenizer, "pad-one", masked=True, pad_id=1)


def test_a_version_that_reads_the_model_servers_pad_id_is_unfit(repo: Path) -> None:
    runtime = load_runtime(repo, "pad-one", 1, GatewaySettings())
    assert runtime.spec.pad_id == 1
    with pytest.raises(UnfitVersionError) as caught:  # it was routed
        check_fit(LocalBackend(repo), runtime)
    assert caught.value.reason.startswith(
        "output mood_probs changes when the inputs are padded further with 0, as the model "
        "server's batching pads (the spec's pad_id is 1)"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("short", "input 'text': the model fails on a row of max_tokens 16 ids"),
        ("short-nan", "output 'mood_probs' is missing or not finite for a row of max_tokens 16"),
    ],
)
def test_a_version_with_fewer_positions_than_max_tokens_is_unfit(
    repo: Path, name: str, reason: str
) -> None:
    # Exported outside export_for_serving (whose probe refuses it): the short example
    # passed, the version was routed, and every text of more than 8 ids was a 502.
    runtime = load_runtime(repo, name, 1, GatewaySettings())
    with pytest.raises(UnfitVersionError) as caught:
        check_fit(LocalBackend(repo), runtime)
    assert reason in caught.value.reason
