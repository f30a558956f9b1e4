"""Versions made unfit by their assets: tokenizers, examples, asset files (runtime.load_runtime)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from serving.contract import ASSETS_DIR, MODEL_CARD_FILE, PREPROCESSING_FILE, TOKENIZER_FILE
from serving.gateway import runtime, spec_files
from serving.gateway.asset_checks import read_asset
from serving.gateway.runtime import UnfitVersionError, load_runtime
from serving.spec import SPEC_FILE, dump_spec
from serving.spec_outputs import head_labels
from serving.tokenization import file_sha256, parse_tokenizer
from tests.unit.gateway.conftest import RUNTIME_SETTINGS as SETTINGS
from tests.unit.gateway.conftest import copy_qa


def _swap_two_words(tokenizer_file: Path) -> None:
    """Another tokenizer of the same vocabulary size: two words trade ids."""
    data = json.loads(tokenizer_file.read_text())
    vocab = data["model"]["vocab"]
    vocab["mary"], vocab["john"] = vocab["john"], vocab["mary"]
    tokenizer_file.write_text(json.dumps(data))


def test_a_tokenizer_other_than_the_exported_one_makes_the_version_unfit(tiny_repo, tmp_path):
    # Same vocabulary size, so vocab_size and the example's shapes pass: it was routed, and
    # every "mary" reached the model as "john". model_card.json records the exported sha256.
    assets = copy_qa(tiny_repo, tmp_path)
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
    assets = copy_qa(tiny_repo, tmp_path)
    example = {**qa.spec.example, "question": question}
    (assets / SPEC_FILE).write_text(dump_spec(qa.spec.model_copy(update={"example": example})))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason == "the spec's example question has no word for its tokenizer"


def test_an_example_whose_cut_keeps_no_word_makes_the_version_unfit(qa, tiny_repo, tmp_path):
    # Its question passes has_words, but cut to max_tokens the model reads "?" only: it was
    # routed, and /docs offered an example every endpoint refused (422 no_words).
    assets = copy_qa(tiny_repo, tmp_path)
    limit = qa.spec.input("question").max_tokens
    example = {**qa.spec.example, "question": "? " * limit + "Where is Mary?"}
    (assets / SPEC_FILE).write_text(dump_spec(qa.spec.model_copy(update={"example": example})))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason == (
        f"the spec's example question has no word within what the model reads (max_tokens {limit})"
    )


def test_a_tokenizer_that_fails_on_unknown_words_makes_the_version_unfit(tiny_repo, tmp_path):
    # Its unknown token is not in its vocabulary: it was routed, and every request with a word
    # outside the vocabulary was a 500 (the tokenizer raised while validating the text).
    assets = copy_qa(tiny_repo, tmp_path)
    data = json.loads((assets / TOKENIZER_FILE).read_text())
    data["model"]["unk_token"] = "[NOT-IN-VOCAB]"
    (assets / TOKENIZER_FILE).write_text(json.dumps(data))
    card = json.loads((assets / MODEL_CARD_FILE).read_text())  # as an export records it
    card["tokenizer_sha256"] = {TOKENIZER_FILE: file_sha256(assets / TOKENIZER_FILE)}
    (assets / MODEL_CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason.startswith(
        "tokenizer tokenizer.json fails on words outside its vocabulary"
    )


def test_a_runaway_asset_file_is_refused_unread(tiny_repo, legacy_repo, tmp_path, monkeypatch):
    # Found by the adversarial repo pass: every worker read each asset whole at each check, so
    # a spec grown to gigabytes (a labels list gone wrong) took each worker's memory. A spec
    # past the limit, here valid JSON padded with blanks, was routed.
    assets = copy_qa(tiny_repo, tmp_path)
    spec = assets / SPEC_FILE
    spec.write_bytes(spec.read_bytes() + b" " * 16 * 2**20)
    with pytest.raises(UnfitVersionError, match=r"^serving_spec\.json is larger than 16 MiB$"):
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    shutil.copy2(tiny_repo / "qa" / "1" / ASSETS_DIR / SPEC_FILE, spec)
    monkeypatch.setattr(runtime, "MAX_TOKENIZER_BYTES", 1000)
    with pytest.raises(UnfitVersionError, match=r"^tokenizer\.json is larger than 0 MiB$"):
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    monkeypatch.setattr(spec_files, "MAX_METADATA_BYTES", 10)  # read_spec reads the legacy files
    with pytest.raises(UnfitVersionError, match=r"^preprocessing\.json is larger than 0 MiB$"):
        load_runtime(legacy_repo, "qa", 1, SETTINGS)


def test_fixing_an_assets_permissions_changes_its_fingerprint(tiny_repo, tmp_path) -> None:
    # Found by the adversarial repo pass: an unfit verdict is kept until the assets' size or
    # mtime change, and chmod changes neither: a spec made readable again stayed unfit until
    # the gateway restarted.
    assets = copy_qa(tiny_repo, tmp_path)
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
    assets = copy_qa(tiny_repo, tmp_path)
    _edit_tokenizer(assets, lambda data: data["model"]["vocab"].update(mary=100))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason.startswith("tokenizer tokenizer.json gives ids up to 100, beyond")


def test_a_special_token_id_past_vocab_size_makes_the_version_unfit(tiny_repo, tmp_path) -> None:
    # Found by the anymodel3 pass: ids a post-processor adds ("[CLS]" 101 in a template) are
    # no vocabulary entry, so the check above missed them and the gateway sent 101 to the
    # model's small embedding (a 502 for every request).
    assets = copy_qa(tiny_repo, tmp_path)
    cls = {"SpecialToken": {"id": "[CLS]", "type_id": 0}}
    template = {
        "type": "TemplateProcessing",
        "single": [cls, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [],
        "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]}},
    }
    _edit_tokenizer(assets, lambda data: data.update(post_processor=template))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason.startswith("tokenizer tokenizer.json gives ids up to 101, beyond")


def _no_regular_file(path: Path, kind: str) -> None:
    """Put ``kind`` where the file ``path`` was."""
    path.unlink()
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling symlink":
        path.symlink_to(path.parent / "gone.json")
    else:  # a symlink to itself: ELOOP on every open
        path.symlink_to(path.name)


@pytest.mark.parametrize("kind", ["folder", "fifo", "dangling symlink", "looping symlink"])
@pytest.mark.parametrize("name", [SPEC_FILE, MODEL_CARD_FILE])
def test_a_spec_or_card_that_is_no_regular_file_makes_the_version_unfit(
    tiny_repo, tmp_path, name, kind
) -> None:
    # Found by the adversarial repo pass 5: is_file() read such an entry as no file, so a
    # card that was a folder or a FIFO turned the tokenizer hash check off, and such a spec
    # served the version from its legacy files (an export writes both).
    assets = copy_qa(tiny_repo, tmp_path)  # a spec, a card and the legacy files
    assert (assets / PREPROCESSING_FILE).is_file()
    _no_regular_file(assets / name, kind)
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason == f"{name} is not a regular file"


def test_the_tokenizer_hashed_is_the_one_loaded(tiny_repo, tmp_path, monkeypatch) -> None:
    # Found by the adversarial repo pass 5: the tokenizer was loaded from its path, then the
    # path read again to hash it. One replaced in between (a wrong one being put right) was
    # served while its successor's hash matched model_card.json. Here the exported file
    # lands the moment after the wrong one is parsed.
    assets = copy_qa(tiny_repo, tmp_path)
    exported = (assets / TOKENIZER_FILE).read_bytes()
    _swap_two_words(assets / TOKENIZER_FILE)

    def parse_then_replace(text: str) -> object:
        parsed = parse_tokenizer(text)
        (assets / TOKENIZER_FILE).write_bytes(exported)
        return parsed

    monkeypatch.setattr("serving.gateway.runtime.parse_tokenizer", parse_then_replace)
    with pytest.raises(UnfitVersionError, match="is not the one exported with the model"):
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    monkeypatch.undo()
    assert load_runtime(tmp_path, "qa", 1, SETTINGS).tokenizer_sha256[TOKENIZER_FILE] == (
        file_sha256(assets / TOKENIZER_FILE)
    )


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_an_asset_swapped_for_no_regular_file_after_its_check_is_refused_unblocked(
    tmp_path, kind
) -> None:
    # The read itself checks what it opened (non-blocking): a FIFO put in place after the
    # is_file() check had blocked the worker's poller on open, waiting for a writer.
    path = tmp_path / SPEC_FILE
    path.write_text("{}")
    _no_regular_file(path, kind)
    with pytest.raises(UnfitVersionError, match=r"^serving_spec\.json is not a regular file$"):
        read_asset(path, 100)


def test_a_spec_with_labels_in_another_order_than_exported_is_unfit(tiny_repo, tmp_path) -> None:
    # Found by the adversarial repo pass 6: another version's spec copied in, its labels in
    # another order (a model trained on another label order), passed every check and
    # answered each column under another label.
    assets = copy_qa(tiny_repo, tmp_path)
    spec = json.loads((assets / SPEC_FILE).read_text())
    labels = spec["heads"][0]["labels"]
    card = json.loads((assets / MODEL_CARD_FILE).read_text())
    assert card["labels"] == {"answer_probs": labels}  # as the export records them
    spec["heads"][0]["labels"] = labels[::-1]
    (assets / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason == (
        "output answer_probs: the spec's labels are in another order than the model was "
        "exported with (model_card.json): its columns would be answered under other labels"
    )
    renamed = [f"{label}!" for label in labels]  # the spec's to choose: not refused
    spec["heads"][0]["labels"] = renamed
    (assets / SPEC_FILE).write_text(json.dumps(spec))
    assert head_labels(load_runtime(tmp_path, "qa", 1, SETTINGS).spec) == {"answer_probs": renamed}
    spec["heads"][0]["labels"] = labels[::-1]
    (assets / SPEC_FILE).write_text(json.dumps(spec))
    del card["labels"]  # a card of an older export names none: not checked
    (assets / MODEL_CARD_FILE).write_text(json.dumps(card))
    served = load_runtime(tmp_path, "qa", 1, SETTINGS).spec
    assert head_labels(served) == {"answer_probs": labels[::-1]}


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        ("[]", "model_card.json is no JSON object"),
        ('"qa"', "model_card.json is no JSON object"),
        ('{"tokenizer_sha256": 5}', "model_card.json: tokenizer_sha256 is no object of"),
        ('{"tokenizer_sha256": ["x"]}', "model_card.json: tokenizer_sha256 is no object of"),
        ('{"tokenizer_sha256": "0ff1ce"}', "tokenizer tokenizer.json is not the one exported"),
    ],
)
def test_a_card_of_another_shape_does_not_turn_the_tokenizer_check_off(
    tiny_repo, tmp_path, card: str, reason: str
) -> None:
    # Found by the adversarial repo pass 11: a card of [] (or whose tokenizer_sha256 was no
    # object) was read as a card without hashes, so a version with another tokenizer was
    # routed; a card that is no JSON was already refused. A string is the first exports'
    # record of tokenizer.json's digest: checked as such.
    assets = copy_qa(tiny_repo, tmp_path)
    _swap_two_words(assets / TOKENIZER_FILE)
    (assets / MODEL_CARD_FILE).write_text(card)
    with pytest.raises(UnfitVersionError) as caught:
        load_runtime(tmp_path, "qa", 1, SETTINGS)
    assert caught.value.reason.startswith(reason)
    digest = file_sha256(assets / TOKENIZER_FILE)
    (assets / MODEL_CARD_FILE).write_text(json.dumps({"tokenizer_sha256": digest}))
    assert load_runtime(tmp_path, "qa", 1, SETTINGS).version == 1
