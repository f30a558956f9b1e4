"""The ASCII twin of a served tokenizer (serving.ascii_normalizers) encodes every ASCII text as
the file does, and only ASCII text is given to it."""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import pytest
from tokenizers import AddedToken, Encoding, Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel, WordPiece

from serving.ascii_normalizers import (
    TWIN,
    ascii_normalizer,
    ascii_twin,
    encode_plain,
    encode_plain_fast,
)
from serving.tokenization import (
    TokenizerPanicError,
    load_tokenizer,
    panics_as_errors,
    parse_tokenizer,
)

WORDS = ["mary", "went", "to", "the", "office", "cafe", "naive", "it", "s", "3", "14", "a", "b"]


def _vocab(extra: list[str]) -> dict[str, int]:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS, *extra]
    return {token: index for index, token in enumerate(dict.fromkeys(tokens))}


def _word_level(normalizer: Any) -> Tokenizer:
    tokenizer = Tokenizer(WordLevel(_vocab(list(string.punctuation)), unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(["[CLS]", AddedToken("[sep]", normalized=True)])
    return tokenizer


def _word_piece(**bert: Any) -> Tokenizer:
    pieces = ["##s", "##e", "##fe", "ca", "na", "##ive", *string.punctuation]
    tokenizer = Tokenizer(WordPiece(_vocab(pieces), unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(**bert)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.add_special_tokens(["[CLS]", "[SEP]"])
    return tokenizer


TOKENIZERS = {
    "nfd-lower-strip": lambda: _word_level(
        normalizers.Sequence(
            [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()]
        )
    ),
    "nfkc-replace-strip": lambda: _word_level(
        normalizers.Sequence(
            [
                normalizers.NFKC(),
                normalizers.Replace("X", "y"),
                normalizers.Sequence([normalizers.NFC(), normalizers.Strip()]),
            ]
        )
    ),
    "nfkd-alone": lambda: _word_level(normalizers.NFKD()),
    "nfd-then-accents-written": lambda: _word_level(
        normalizers.Sequence(
            [normalizers.NFD(), normalizers.Replace("a", "\u00e9"), normalizers.StripAccents()]
        )
    ),
    "bert-lowercase": lambda: _word_piece(lowercase=True),
    "bert-cased-accents": lambda: _word_piece(lowercase=False, strip_accents=True),
    "bert-no-clean": lambda: _word_piece(clean_text=False, lowercase=True),
}


def _served(name: str) -> Tokenizer:
    return _served_from(TOKENIZERS[name]())


def _twin(tokenizer: Tokenizer) -> Tokenizer:
    twin = ascii_twin(tokenizer)
    assert twin is not None
    return twin


def _served_from(tokenizer: Tokenizer) -> Tokenizer:
    return parse_tokenizer(tokenizer.to_str())


def _ascii_texts() -> list[str]:
    every = "".join(chr(code) for code in range(128))
    texts = [every, every[::-1], "", " ", "Mary went to the OFFICE.", "It's 3.14 [CLS] [sep] [SEP]"]
    texts += ["\t\n\r\x00\x7f\x0b\x0c naive  cafe\x1f", "[sep][SEP]mary[cls]", "a\u0000b"]
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " \t\n\x00\x7f"
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 60))) for _ in range(300)]
    texts += [" ".join(rng.choices([*WORDS, "[CLS]", "[sep]", "MARY"], k=20)) for _ in range(50)]
    return texts


def _normalized(tokenizer: Tokenizer, text: str) -> str:
    normalizer = tokenizer.normalizer
    return text if normalizer is None else normalizer.normalize_str(text)


def _seen(encoding: Encoding) -> tuple[Any, ...]:
    return (encoding.ids, encoding.tokens, encoding.offsets, encoding.word_ids)


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_the_twin_encodes_every_ascii_text_as_the_file(name: str) -> None:
    tokenizer = _served(name)
    twin = _twin(tokenizer)
    for text in _ascii_texts():
        expected = tokenizer.encode(text, add_special_tokens=False)
        assert _seen(twin.encode(text, add_special_tokens=False)) == _seen(expected), repr(text)
        assert _seen(encode_plain(tokenizer, text)) == _seen(expected), repr(text)
        paired = tokenizer.encode(text, text[::-1])
        assert _seen(twin.encode(text, text[::-1])) == _seen(paired), repr(text)
    texts = _ascii_texts()
    fast = [encoding.ids for encoding in encode_plain_fast(tokenizer, texts)]
    assert fast == [tokenizer.encode(text, add_special_tokens=False).ids for text in texts]


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_a_text_that_is_not_ascii_is_encoded_by_the_file(name: str) -> None:
    tokenizer = _served(name)
    fullwidth = "\uff4d\uff41\uff52\uff59 went"
    texts = ["Naïve café", fullwidth, "Mary 中文 went", "cafe\u0301", "I\u0307 \u212b"]
    for text in texts:
        expected = tokenizer.encode(text, add_special_tokens=False)
        assert _seen(encode_plain(tokenizer, text)) == _seen(expected), text
    mixed = ["Mary went", *texts]
    fast = [encoding.ids for encoding in encode_plain_fast(tokenizer, mixed)]
    assert fast == [tokenizer.encode(text, add_special_tokens=False).ids for text in mixed]
    # The twin does differ on these: the file's steps are what reads them.
    twin = _twin(tokenizer)
    assert any(_normalized(twin, text) != _normalized(tokenizer, text) for text in texts), (
        "no text here needs the steps the twin leaves out"
    )


def test_steps_that_change_ascii_are_kept() -> None:
    lower = {"type": "Lowercase"}
    assert ascii_normalizer(None) is None
    assert ascii_normalizer({"type": "NFD"}) is None
    assert ascii_normalizer(lower) == lower
    assert ascii_normalizer({"type": "Sequence", "normalizers": [{"type": "NFD"}, lower]}) == lower
    only = {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "StripAccents"}]}
    assert ascii_normalizer(only) is None
    charsmap = {"type": "Precompiled", "precompiled_charsmap": "AAAA"}
    assert ascii_normalizer(charsmap) == charsmap
    bert = {
        "type": "BertNormalizer",
        "clean_text": True,
        "handle_chinese_chars": True,
        "strip_accents": None,
        "lowercase": True,
    }
    assert ascii_normalizer(bert) == {**bert, "handle_chinese_chars": False, "strip_accents": False}


def test_steps_after_one_that_may_write_non_ascii_are_kept() -> None:
    accents = {"type": "StripAccents"}
    written = {"type": "Replace", "pattern": {"String": "a"}, "content": "\u00e9"}
    after = {"type": "Sequence", "normalizers": [written, {"type": "NFD"}, accents]}
    assert ascii_normalizer(after) is after
    sentencepiece = {"type": "Prepend", "prepend": "\u2581"}
    assert ascii_normalizer({"type": "Sequence", "normalizers": [sentencepiece, accents]}) == {
        "type": "Sequence",
        "normalizers": [sentencepiece, accents],
    }
    charsmap = {"type": "Precompiled", "precompiled_charsmap": "AAAA"}
    nested = {"type": "Sequence", "normalizers": [{"type": "NFKC"}, charsmap, {"type": "NFC"}]}
    # Flattened: NFKC goes (ASCII so far), NFC after the map stays.
    assert ascii_normalizer({"type": "Sequence", "normalizers": [nested]}) == {
        "type": "Sequence",
        "normalizers": [charsmap, {"type": "NFC"}],
    }
    plain = {"type": "Replace", "pattern": {"String": "  "}, "content": " "}
    assert ascii_normalizer({"type": "Sequence", "normalizers": [plain, accents]}) == plain


def test_a_tokenizer_whose_replace_writes_accents_is_encoded_as_its_file() -> None:
    # "thx" -> "thé" -> NFD -> StripAccents -> "the": the twin must keep both steps.
    written = normalizers.Replace("x", "\u00e9")
    tokenizer = _served_from(
        _word_level(normalizers.Sequence([written, normalizers.NFD(), normalizers.StripAccents()]))
    )
    assert ascii_twin(tokenizer) is None
    assert encode_plain(tokenizer, "thx officx").tokens == ["the", "office"]
    for text in ["thx", "Mary wxnt to thx cafx", *_ascii_texts()[:50]]:
        expected = tokenizer.encode(text, add_special_tokens=False)
        assert _seen(encode_plain(tokenizer, text)) == _seen(expected), repr(text)


def test_an_added_token_spelt_outside_ascii_keeps_the_file() -> None:
    # Its spelling is normalized with the file's normalizer to be found: "Caf\u00e9x" is found
    # in "cafex" under NFD + Lowercase + StripAccents; a twin without them would not find it.
    tokenizer = _word_level(
        normalizers.Sequence(
            [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()]
        )
    )
    tokenizer.add_tokens([AddedToken("Caf\u00e9x", normalized=True)])
    served = _served_from(tokenizer)
    assert ascii_twin(served) is None
    assert encode_plain(served, "the CAFEX went").tokens == ["the", "cafex", "went"]
    tokenizer.add_tokens([AddedToken("\u00e9t\u00e9", normalized=False)])  # matched as sent
    tokenizer.add_tokens([AddedToken("Naivex", normalized=True)])
    assert ascii_twin(_served_from(tokenizer)) is None
    ascii_only = _word_level(normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()]))
    ascii_only.add_tokens([AddedToken("\u00e9t\u00e9", normalized=False), "Naivex"])
    served = _served_from(ascii_only)
    assert ascii_twin(served) is not None
    for text in ["the NAIVEX went", "\u00e9t\u00e9 naivex", *_ascii_texts()[:50]]:
        expected = served.encode(text, add_special_tokens=False)
        assert _seen(encode_plain(served, text)) == _seen(expected), repr(text)


def test_steps_after_a_regex_replace_are_kept() -> None:
    # An empty match inserts text with zero-width alignments; the file's NFC then panics on
    # "Mary went" (tokenizers 0.23): a twin without NFC answered it (found by a review).
    spaced = normalizers.Replace(Regex("(?=[A-Z])"), " ")
    tokenizer = _served_from(_word_level(normalizers.Sequence([spaced, normalizers.NFC()])))
    assert ascii_twin(tokenizer) is None
    for text in ["Mary went", "Office"]:  # a capital first: an empty match at 0
        with pytest.raises(TokenizerPanicError), panics_as_errors():
            tokenizer.encode(text, add_special_tokens=False)
        with pytest.raises(TokenizerPanicError), panics_as_errors():
            encode_plain(tokenizer, text)
    regex = {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}
    empty = {"type": "Replace", "pattern": {"String": ""}, "content": "x"}
    for replace in (regex, empty):
        kept = {"type": "Sequence", "normalizers": [replace, {"type": "NFD"}]}
        assert ascii_normalizer(kept) is kept


def test_the_twin_is_built_at_the_first_ascii_text_of_a_served_tokenizer() -> None:
    built = TOKENIZERS["nfd-lower-strip"]()
    assert ascii_twin(built) is None  # not loaded for serving: a tokenizer still being built
    encode_plain(built, "mary went")
    assert TWIN not in built.__dict__
    served = _served_from(built)
    assert served.__dict__[TWIN] == "pending"  # a load that reads no text builds none
    encode_plain(served, "Naïve")
    assert served.__dict__[TWIN] == "pending"
    encode_plain(served, "mary went")
    assert isinstance(served.__dict__[TWIN], Tokenizer)


def test_a_file_without_such_steps_gets_no_twin(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    _word_level(normalizers.Lowercase()).save(str(path))
    assert ascii_twin(load_tokenizer(path)) is None
    _word_level(normalizers.NFD()).save(str(path))
    assert ascii_twin(load_tokenizer(path)) is not None
    no_normalizer = Tokenizer(WordLevel(_vocab([]), unk_token="[UNK]"))
    assert ascii_twin(parse_tokenizer(no_normalizer.to_str())) is None


def test_the_twin_shares_the_files_model() -> None:
    # One vocabulary in memory: a change to the file's model is the twin's.
    tokenizer = _served("bert-lowercase")
    tokenizer.model.unk_token = "[PAD]"
    assert _twin(tokenizer).model.unk_token == "[PAD]"
