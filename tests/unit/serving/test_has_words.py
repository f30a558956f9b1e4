"""``has_words``: the rule every text of every model passes (422 ``no_words`` otherwise)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel

from serving.encoding import word_encoding
from serving.spec import TextInput
from serving.windows import Window
from serving.words import has_words, word_kept

# A cut that keeps every token of these short texts: word_encoding gives the whole encoding.
WHOLE = TextInput(field="q", tensor="q_ids", max_tokens=10_000, vocab_size=9)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    built = Tokenizer(WordLevel({"[UNK]": 0, "mary": 1, "office": 2}, unk_token="[UNK]"))
    built.normalizer = normalizers.Sequence(
        [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()]
    )
    built.pre_tokenizer = pre_tokenizers.Whitespace()
    return built


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\t\n\u00a0\u3000", "\u200b", "\u200b\u200c\u200d\u2060\ufeff", "\x00\x01\x7f",
     "\u00ad", "?!", "...", "_", "\U0001f600", "\u0301"],
)  # fmt: skip
def test_texts_without_a_word_are_refused(tokenizer: Tokenizer, text: str) -> None:
    assert not has_words(tokenizer, text)


@pytest.mark.parametrize(
    "text",
    ["Mary", "zzqx", "é", "\u200b mary", " " * 500 + "x", "?" * 100 + "7", "日本", "Σ", "٣"],
)
def test_texts_with_a_word_are_kept(tokenizer: Tokenizer, text: str) -> None:
    # unknown words count: they become [UNK] ids, as in training
    assert has_words(tokenizer, text)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\u200b", "?!", "_", "\U0001f600", "\u0301", "\x00\x01\x7f",
     "Mary", "zzqx", "é", "\u200b mary", " " * 500 + "x", "?" * 100 + "7", "日本", "Σ", "٣"],
)  # fmt: skip
def test_word_encoding_follows_has_words(tokenizer: Tokenizer, text: str) -> None:
    # the gateway's one tokenisation of a text input decides no_words by the same rule
    encoding = word_encoding(tokenizer, text, WHOLE)
    assert (encoding is not None) == has_words(tokenizer, text)
    if encoding is not None:
        assert encoding.encoding.ids == tokenizer.encode(text, add_special_tokens=False).ids


@pytest.fixture(scope="module")
def special_tokenizer() -> Tokenizer:
    built = Tokenizer(WordLevel({"[PAD]": 0, "[UNK]": 1, "mary": 2, "pad": 3}, unk_token="[UNK]"))
    built.pre_tokenizer = pre_tokenizers.Whitespace()
    built.add_special_tokens(["[PAD]", "[UNK]", "[SEP]", "[CLS]"])
    return built


@pytest.mark.parametrize("text", ["[PAD]", "[SEP]", "[PAD][PAD]", " [CLS] [SEP]\u200b ", "[SEP]?"])
def test_special_tokens_spelt_out_are_no_words(special_tokenizer: Tokenizer, text: str) -> None:
    # "[PAD]" has letters, and its own window "PAD]" tokenises to words, yet the whole text is
    # the pad id: the model sees nothing, as for a blank text.
    assert not has_words(special_tokenizer, text)
    assert word_encoding(special_tokenizer, text, WHOLE) is None


@pytest.mark.parametrize("text", ["[UNK]", "Mary [PAD]", "[SEP]pad", "[pad]"])
def test_a_word_beside_special_tokens_is_kept(special_tokenizer: Tokenizer, text: str) -> None:
    # the unknown token stands for a word; "[pad]" is not the special token (case matters)
    assert has_words(special_tokenizer, text)
    encoding = word_encoding(special_tokenizer, text, WHOLE)
    assert encoding is not None
    assert encoding.encoding.ids == special_tokenizer.encode(text, add_special_tokens=False).ids


@pytest.mark.parametrize(
    ("text", "truncation", "kept"),
    [
        ("mary " + "? " * 10, "right", True),
        ("? " * 10 + "mary", "right", False),  # the first 4 tokens are "?"
        ("? " * 10 + "mary", "left", True),
        ("mary " + "? " * 10, "left", False),
        ("[PAD] " * 10 + "mary", "right", False),  # "[PAD]" spells letters, yet is padding
        ("? ? mary", "right", True),  # not cut at all
    ],
)
def test_word_kept_follows_the_inputs_cut(special_tokenizer, text, truncation, kept) -> None:
    item = TextInput(field="q", tensor="q_ids", max_tokens=4, truncation=truncation, vocab_size=9)
    encoding = Window(special_tokenizer.encode(text, add_special_tokens=False))
    assert word_kept(special_tokenizer, text, encoding, item) is kept
