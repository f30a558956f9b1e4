"""A version's own tokenizer and preprocessing lengths drive the gateway's tokenisation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from serving.contract import ASSETS_DIR, PREPROCESSING_FILE, TOKENIZER_FILE
from serving.gateway.assets import AssetsError, load_assets
from serving.tokenization import encode_texts, file_sha256, load_tokenizer

LONG_STORY = " ".join(f"Mary went to the kitchen {index}." for index in range(40))


def test_encoding_matches_the_shared_function_with_the_version_files(tiny_repo: Path) -> None:
    assets = load_assets(tiny_repo, "qa", 1)
    folder = tiny_repo / "qa" / "1" / ASSETS_DIR
    preprocessing = json.loads((folder / PREPROCESSING_FILE).read_text())
    article = preprocessing["inputs"]["article_ids"]
    tokenizer = load_tokenizer(folder / TOKENIZER_FILE)
    texts = [LONG_STORY, "Mary went to the garden."]
    ids = assets.encode("article_ids", texts)
    expected = encode_texts(tokenizer, texts, article["max_length"], article["truncation"])
    assert (ids == expected).all()
    assert ids.shape == (2, article["max_length"])  # padded to the longest row of the batch
    assert assets.tokenizer_sha256 == file_sha256(folder / TOKENIZER_FILE)


def test_left_truncation_keeps_the_end_of_a_story(tiny_repo: Path) -> None:
    assets = load_assets(tiny_repo, "qa", 1)
    ending = assets.encode("article_ids", ["Mary went to the kitchen 39."])[0]
    ending = ending[ending != 0]
    long_row = assets.encode("article_ids", [LONG_STORY])[0]
    assert list(long_row[-len(ending) :]) == list(ending)


def test_profile_posts_joined_by_the_version_separator(tiny_repo: Path) -> None:
    assets = load_assets(tiny_repo, "profile", 1)
    assert assets.join_posts(["first post", "second"]) == "first post [SEP] second"
    ids = assets.encode("post_ids", [assets.join_posts(["first post", "second"])])
    assert assets.tokenizer.token_to_id("[SEP]") in ids[0]


def test_broken_or_missing_assets_are_refused(tiny_repo: Path, tmp_path: Path) -> None:
    with pytest.raises(AssetsError):
        load_assets(tiny_repo, "qa", 42)
    broken = tmp_path / "qa" / "1"
    shutil.copytree(tiny_repo / "qa" / "1" / ASSETS_DIR, broken / ASSETS_DIR)
    (broken / ASSETS_DIR / PREPROCESSING_FILE).write_text('{"inputs": {"article_ids": {}}}')
    with pytest.raises(AssetsError):
        load_assets(tmp_path, "qa", 1)
    (broken / ASSETS_DIR / TOKENIZER_FILE).write_text("not json")
    with pytest.raises(AssetsError):
        load_assets(tmp_path, "qa", 1)
