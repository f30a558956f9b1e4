"""Windowed tokenisation (:mod:`serving.windows`) gives the whole text's ids, rules and segments.

Property-style: for six tokenizer families, several cuts and many random and adversarial texts
(seeded, so every run checks the same texts), everything the gateway derives from a text's
encoding is compared with the same functions on a copy of the tokenizer that always tokenises
the whole text (windowing off: the behaviour before windows existed).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator

import pytest
from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)

from serving import windows
from serving.encoding import segment_texts, truncated_encoding, word_encoding
from serving.spec import SegmentRule, TextInput
from serving.tokenization import encode_texts, id_matrix, join_posts
from serving.windows import budget, cut_characters, kept_window
from serving.words import word_kept

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
WORDS = [
    "mary",
    "went",
    "to",
    "the",
    "office",
    ".",
    "john",
    "left",
    "the",
    "kitchen",
    ";",
    "where",
    "is",
    "the",
    "milk",
    "?",
    "café",
    "naïve",
    "résumé",
    "Straße",
    "ΣΟΦΙΑ",
    "σοφία",
    "日本語",
    "東京",
    "1984",
    "3.14",
    "don't",
    "it's",
    "well-known",
    "e-mail",
    "#tag",
    "@user",
    ":)",
    "...",
    "!!!",
    "?!",
]
# One token each, many characters: a window then holds barely more than the kept tokens,
# so a token a cut changed would be among them.
LONG = ["internationalisation", "counterrevolutionaries", "electroencephalograms"]
WORDS += LONG
CORPUS = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 3
# Pieces meant to land on a cut: whitespace of every kind, marks and zero-width characters,
# control tokens spelt in the text, CRLF and runs.
ODD = [
    " ", "  ", "\t", "\n", "\r\n", "\u3000", "\u00a0", "\u2003", "\u200b", "\u200d", "\ufeff",
    "\u0301", "e\u0301", "\u0308", "\u00a8", "ﬁ", "[SEP]", "[PAD]", "[CLS]", "[SE", "P]",
    " " * 40, "\n" * 25, "\t \t", "!" * 30, "\x00", "\x1f", "Σ ", "İ",
]  # fmt: skip


def _word_level(pre: pre_tokenizers.PreTokenizer, normalizer: normalizers.Normalizer) -> Tokenizer:
    vocab = {token: index for index, token in enumerate(SPECIAL)}
    for word in " ".join(CORPUS).lower().replace(".", " . ").split():
        vocab.setdefault(word, len(vocab))
    built = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    built.normalizer, built.pre_tokenizer = normalizer, pre
    built.add_special_tokens(SPECIAL)
    return built


def _pieces(pre: pre_tokenizers.PreTokenizer, normalizer: normalizers.Normalizer) -> list[str]:
    """The corpus's distinct pre-tokenized pieces, sorted (vocabularies are built from them by
    hand: the trainers' output varies between runs, and so would the texts' coverage)."""
    found = {
        piece
        for line in CORPUS
        for piece, _ in pre.pre_tokenize_str(normalizer.normalize_str(line))
    }
    return sorted(found)


def _bpe(
    pre: pre_tokenizers.PreTokenizer,
    normalizer: normalizers.Normalizer,
    alphabet: list[str],
    unknown: str | None,
) -> Tokenizer:
    vocab = {token: index for index, token in enumerate(SPECIAL)}
    merges: list[tuple[str, str]] = []
    for char in alphabet:
        vocab.setdefault(char, len(vocab))
    # Each piece merged left to right, those with a leading space first (ByteLevel's "Ġwent"
    # must be one token: a window starting at "went" would then differ).
    for piece in sorted(_pieces(pre, normalizer), key=lambda piece: piece[0] not in "Ġ▁"):
        for char in piece:
            vocab.setdefault(char, len(vocab))
        for end in range(1, len(piece)):
            if piece[: end + 1] not in vocab:
                merges.append((piece[:end], piece[end]))
                vocab[piece[: end + 1]] = len(vocab)
    built = Tokenizer(models.BPE(vocab, merges, unk_token=unknown))
    built.normalizer, built.pre_tokenizer = normalizer, pre
    built.add_special_tokens(SPECIAL)
    return built


def _byte_level(prefix_space: bool) -> Tokenizer:
    pre = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    built = _bpe(pre, normalizers.NFC(), pre_tokenizers.ByteLevel.alphabet(), None)
    built.decoder = decoders.ByteLevel()
    built.post_processor = processors.ByteLevel(trim_offsets=prefix_space)
    return built


def _unigram() -> Tokenizer:
    pre, normalizer = pre_tokenizers.Metaspace(), normalizers.NFKC()
    pieces = _pieces(pre, normalizer)
    chars = sorted({char for piece in pieces for char in piece})
    vocab = [(token, 0.0) for token in SPECIAL]
    vocab += [(piece, -1.0 * len(piece) ** 0.5) for piece in pieces if len(piece) > 1]
    vocab += [(char, -10.0) for char in chars]
    built = Tokenizer(models.Unigram(vocab, unk_id=1))
    built.normalizer, built.pre_tokenizer = normalizer, pre
    built.add_special_tokens(SPECIAL)
    return built


def _bert() -> Tokenizer:
    pre, normalizer = pre_tokenizers.BertPreTokenizer(), normalizers.BertNormalizer(lowercase=True)
    pieces = _pieces(pre, normalizer)
    chars = sorted({char for piece in pieces for char in piece})
    vocab = {token: index for index, token in enumerate(SPECIAL)}
    for token in [*pieces, *chars, *(f"##{char}" for char in chars), "##ing", "##s"]:
        vocab.setdefault(token, len(vocab))
    built = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    built.normalizer, built.pre_tokenizer = normalizer, pre
    built.add_special_tokens(SPECIAL)
    built.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return built


def _families() -> dict[str, Tokenizer]:
    accents = normalizers.Sequence(
        [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()]
    )
    punctuation = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation(), pre_tokenizers.Digits()]
    )
    return {
        "word_level": _word_level(pre_tokenizers.Whitespace(), accents),
        "word_split_nfkc": _word_level(pre_tokenizers.WhitespaceSplit(), normalizers.NFKC()),
        "wordpiece_bert": _bert(),
        "bpe_byte_level": _byte_level(prefix_space=True),
        "bpe_byte_level_gpt2": _byte_level(prefix_space=False),
        "unigram_metaspace": _unigram(),
        "bpe_punctuation": _bpe(punctuation, normalizers.Lowercase(), [], "[UNK]"),
    }


FAMILIES = _families()


def _whole_only(tokenizer: Tokenizer) -> Tokenizer:
    """A copy of ``tokenizer`` that :mod:`serving.windows` never windows (the reference)."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    windows._CUTS[copy] = frozenset()
    return copy


def _texts(seed: int, count: int) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        pieces: list[str] = []
        for _ in range(rng.randrange(1, 400)):
            pool = ODD if rng.random() < 0.3 else WORDS
            pieces.append(rng.choice(pool))
            pieces.append(rng.choice([" ", " ", " ", "", "\n", "  ", "\t", "\u3000"]))
        yield "".join(pieces)
    for _ in range(count // 4):
        spaces = [" ", "  ", "\t", "\n", " \u3000 "]
        yield "".join(rng.choice(LONG) + rng.choice(spaces) for _ in range(rng.randrange(5, 200)))
    # Adversarial: the only word past any cut, no word at all, whitespace runs at every cut.
    yield "!" * 3000 + " mary"
    yield "! " * 1500 + "mary"
    yield "mary" + " " * 3000
    yield " " * 3000 + "mary"
    yield "[SEP] " * 600 + "mary [PAD]"
    yield "mary " + "[PAD] " * 600
    yield "\u3000".join(["mary"] * 800)
    yield "\u00a0".join(["mary"] * 800)
    yield "\r\n".join(["mary went home."] * 300)
    yield "\u200b " * 1500
    yield "e\u0301 " * 1000 + "\u0301" * 50
    yield "ﬁ" * 2000


CUTS = [(3, "right", True), (8, "left", True), (17, "right", False), (40, "left", False),
        (9, "left", True), (64, "right", True)]  # fmt: skip


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("max_tokens, truncation, special", CUTS)
def test_a_window_gives_what_the_whole_text_gives(
    family: str, max_tokens: int, truncation: str, special: bool
) -> None:
    tokenizer = FAMILIES[family]
    reference = _whole_only(tokenizer)
    item = TextInput.model_validate(
        {"field": "text", "tensor": "ids", "max_tokens": max_tokens, "truncation": truncation,
         "add_special_tokens": special, "vocab_size": 1000}
    )  # fmt: skip
    rule = SegmentRule(separator_token=".", order="last_first", max_segments=5)
    seed = zlib.crc32(f"{family} {max_tokens} {truncation} {special}".encode())
    for text in _texts(seed, 40):
        expected = word_encoding(reference, text, item)
        window = word_encoding(tokenizer, text, item)
        assert (window is None) == (expected is None), text
        whole_ids = encode_texts(
            reference, [text], max_tokens, item.truncation, add_special_tokens=special
        )
        fast = kept_window(tokenizer, text, budget(tokenizer, item), item.truncation, offsets=False)
        ids = id_matrix(
            tokenizer, [fast.encoding], max_tokens, item.truncation, add_special_tokens=special
        )
        assert ids.tolist() == whole_ids.tolist(), text
        if window is None or expected is None:
            continue
        assert word_kept(tokenizer, text, window, item) == word_kept(
            reference, text, expected, item
        )
        # As the gateway does: the validation window is cut for the model, then segmented.
        ids = id_matrix(
            tokenizer, [window.encoding], max_tokens, item.truncation, add_special_tokens=special
        )
        assert ids.tolist() == whole_ids.tolist(), text
        # The whole text's encoding as is (segment_texts alone reads a spelt special token
        # as text: test_literal_specials), as the window was made.
        whole = truncated_encoding(reference, text, item)
        assert segment_texts(tokenizer, text, item, rule, window) == segment_texts(
            reference, text, item, rule, whole
        ), text


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_texts_joined_by_a_separator_keep_their_ids(family: str) -> None:
    tokenizer = FAMILIES[family]
    rng = random.Random(7)
    posts = list(_texts(11, 30))
    for _ in range(20):
        joined = join_posts(rng.sample(posts, rng.randrange(1, 8)), "[SEP]")
        for truncation in ("right", "left"):
            kept = 32 - tokenizer.num_special_tokens_to_add(False)
            fast = kept_window(tokenizer, joined, kept, truncation, offsets=False)
            ids = id_matrix(tokenizer, [fast.encoding], 32, truncation)
            whole = encode_texts(tokenizer, [joined], 32, truncation)
            assert ids.tolist() == whole.tolist()


def test_the_families_are_windowed_and_long_texts_are_cut() -> None:
    # The test above would pass vacuously if no family were windowed.
    assert all(cut_characters(tokenizer) for tokenizer in FAMILIES.values())
    assert cut_characters(FAMILIES["unigram_metaspace"]) == frozenset(" ")
    text = "mary went to the office . " * 400
    assert not kept_window(FAMILIES["word_level"], text, 10, "right").whole
    assert not kept_window(FAMILIES["bpe_byte_level"], text, 10, "left").whole


def test_an_added_token_normalised_across_a_space_turns_windows_off() -> None:
    # NFKC makes the added token "aaaaaaaa\u00a8" "aaaaaaaa \u0308", matched in the normalized
    # text across the raw space of "aaaaaaaa \u0308": a prefix cut at that space had given
    # [UNK] a ##a ##a ##a where the whole text gives [UNK] <added> x x x.
    vocab = {"[UNK]": 0, "a": 1, "x": 2, "\u0308": 3, "##a": 4}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizers.NFKC(), pre_tokenizers.Whitespace()
    tokenizer.add_tokens([AddedToken("aaaaaaaa\u00a8", normalized=True)])
    assert cut_characters(tokenizer) == frozenset()
    text = "z" * 83 + " aaaaaaaa \u0308 " + "x " * 300
    fast = kept_window(tokenizer, text, 5, "right", offsets=False)
    ids = id_matrix(tokenizer, [fast.encoding], 5, "right", add_special_tokens=False)
    whole = encode_texts(_whole_only(tokenizer), [text], 5, "right", add_special_tokens=False)
    assert ids.tolist() == whole.tolist()
    # Not normalized: matched in the raw text, where it holds no space (still windowed).
    raw = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    raw.normalizer, raw.pre_tokenizer = normalizers.NFKC(), pre_tokenizers.Whitespace()
    raw.add_tokens([AddedToken("aaaaaaaa\u00a8", normalized=False)])
    assert cut_characters(raw)
