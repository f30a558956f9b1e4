"""A list input cut at ``max_joined_chars`` or ``max_tokens`` must keep a word in what the
model reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from serving.gateway.request_models import build_models
from serving.gateway.runtime import load_runtime
from serving.gateway.settings import GatewaySettings

SETTINGS = GatewaySettings()


def models_with_posts(repo: Path, **posts_update: object):
    """The tiny profile version's request models, its posts input changed by ``posts_update``."""
    runtime = load_runtime(repo, "profile", 1, SETTINGS)
    posts = runtime.spec.inputs[0].model_copy(update=posts_update)
    spec = runtime.spec.model_copy(update={"inputs": [posts]})
    return build_models("profile", spec, SETTINGS, runtime.tokenizers)


def list_no_words(models, posts: list[str]) -> list[ErrorDetails]:
    """The validation errors of ``posts``, asserted to be one ``no_words`` at the list."""
    with pytest.raises(ValidationError) as caught:
        models.instance.model_validate({"posts": posts})
    ((location, kind),) = [(item["loc"], item["type"]) for item in caught.value.errors()]
    assert (location, kind) == (("posts",), "no_words")
    return caught.value.errors()


@pytest.fixture(scope="module")
def profile_models(tiny_repo: Path):
    """The tiny profile version's request models, its posts cut at 40 joined characters."""
    return models_with_posts(tiny_repo, max_joined_chars=40)


@pytest.mark.parametrize(
    "posts", [[" " * 60 + "hello"], ["\u200b" * 45 + "a", "hello"], ["!" * 45 + " mary"]]
)
def test_posts_whose_words_are_all_cut_off_are_no_words(profile_models, posts) -> None:
    # Each post has a word, but the joined text is cut at 40 characters before tokenising,
    # as training cut it: the model read blanks and answered a profile from nothing (200).
    list_no_words(profile_models, posts)


@pytest.mark.parametrize("posts", [["hello" + " " * 60], ["hi", "x" * 100], ["mary"] * 30])
def test_posts_with_a_word_in_what_the_model_reads_pass(profile_models, posts) -> None:
    assert profile_models.instance.model_validate({"posts": posts})


@pytest.fixture(scope="module")
def token_cut_models(tiny_repo: Path):
    """The tiny profile version's request models, its posts cut at 16 tokens (none by chars)."""
    return models_with_posts(tiny_repo, max_tokens=16, max_joined_chars=None)


@pytest.mark.parametrize(
    "posts", [["! " * 30 + "mary"], ["? " * 20 + "x", "hello"], ["[SEP] " * 20 + "mary went home"]]
)
def test_posts_whose_words_are_past_max_tokens_are_no_words(token_cut_models, posts) -> None:
    # Within max_chars and max_joined_chars, yet the first 16 tokens the model reads are
    # punctuation or separators: the model answered from nothing (200).
    errors = list_no_words(token_cut_models, posts)
    assert "16 tokens" in errors[0]["msg"]


@pytest.mark.parametrize(
    "posts", [["mary " + "! " * 30], ["! " * 5 + "mary"], ["hi"] * 40, ["! " * 13 + "mary"]]
)
def test_posts_with_a_word_within_max_tokens_pass(token_cut_models, posts) -> None:
    assert token_cut_models.instance.model_validate({"posts": posts})
