"""``segment_texts``: the segments of a text by its encoding, as training and the gateway cut."""

from __future__ import annotations

from typing import Literal

import pytest
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel

from serving.encoding import segment_texts
from serving.spec import SegmentRule, TextInput

Order = Literal["first_first", "last_first"]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    words = ["[UNK]", "[PAD]", ".", "mary", "went", "home", "john", "left"]
    built = Tokenizer(WordLevel({word: index for index, word in enumerate(words)}, "[UNK]"))
    built.normalizer = normalizers.Lowercase()
    built.pre_tokenizer = pre_tokenizers.Whitespace()
    return built


def _by_token_walk(tokenizer: Tokenizer, text: str, rule: SegmentRule) -> list[str | None]:
    """The rule read token by token (how segment_texts walked the encoding before issue 9)."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for token, (begin, end) in zip(encoding.tokens, encoding.offsets, strict=True):
        start = begin if start is None else start
        if token == rule.separator_token:
            spans.append((start, end))
            start = None
    if start is not None:
        spans.append((start, encoding.offsets[-1][1]))
    if rule.order == "last_first":
        spans.reverse()
    slots: list[str | None] = [text[begin:end].strip() for begin, end in spans]
    slots = slots[: rule.max_segments]
    return slots + [None] * (rule.max_segments - len(slots))


@pytest.mark.parametrize(
    "text",
    ["Mary went home. John left.", "Mary went home. John left", ". . Mary.", "Mary . . .",
     "", "   ", ".", "Mary", "  Mary  went. ", "Mary went home.John left. Bob? x. y. z. w."],
)  # fmt: skip
@pytest.mark.parametrize("order", ["first_first", "last_first"])
@pytest.mark.parametrize("max_segments", [1, 2, 8])
def test_segments_end_at_each_separator_and_at_the_last_token(
    tokenizer: Tokenizer, text: str, order: Order, max_segments: int
) -> None:
    rule = SegmentRule(separator_token=".", order=order, max_segments=max_segments)
    item = TextInput(
        field="article", tensor="article_ids", tokenizer="t.json", max_tokens=64,
        add_special_tokens=False, max_chars=200, vocab_size=8,
    )  # fmt: skip
    assert segment_texts(tokenizer, text, item, rule) == _by_token_walk(tokenizer, text, rule)


def test_a_text_of_sentences_gives_one_slot_per_sentence(tokenizer: Tokenizer) -> None:
    rule = SegmentRule(separator_token=".", order="last_first", max_segments=3)
    item = TextInput(
        field="article", tensor="article_ids", tokenizer="t.json", max_tokens=64,
        add_special_tokens=False, max_chars=200, vocab_size=8,
    )  # fmt: skip
    slots = segment_texts(tokenizer, "Mary went home. John left. Mary", item, rule)
    assert slots == ["Mary", "John left.", "Mary went home."]


def test_a_segment_keeps_the_accent_its_last_letter_carries(tokenizer: Tokenizer) -> None:
    """An accent-stripping normalizer maps a combining mark to no token: a segment ending in
    a decomposed "José" ended at "Jose", its U+0301 left out."""
    stripping = Tokenizer.from_str(tokenizer.to_str())
    stripping.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    rule = SegmentRule(separator_token=".", max_segments=2)
    item = TextInput(field="article", tensor="ids", max_tokens=64, vocab_size=8)
    text = "Mary went home. John met Jose\u0301"
    assert segment_texts(stripping, text, item, rule) == ["Mary went home.", "John met Jose\u0301"]
