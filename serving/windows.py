"""Tokenise only the part of a long text the model reads: a window with the whole text's ids.

A model reads ``max_tokens`` ids of a text (its start, or its end with ``truncation: left``),
yet tokenising the whole text cost time and native memory in proportion to all of it (a 1 MB
profile: ~140 MB in the tokenizer). :func:`kept_window` tokenises a prefix (a suffix) cut at
whitespace instead, doubling it until it holds more than the kept tokens, and falls back to
the whole text. Only for tokenizers whose tokens never cross whitespace
(:func:`cut_characters`, read from the tokenizer's own configuration); any other tokenizer
always gets the whole text.

Why a cut at whitespace is exact, for those tokenizers: their normalisers map characters one
by one (NFC/NFKC compose a starter with the marks after it; whitespace is a starter no mark
composes with), their pre-tokenizers end a piece at each whitespace character (ByteLevel and
Metaspace glue one space to the *next* word, never to the previous one), their models
(WordLevel, WordPiece, BPE, Unigram) work inside a piece, and no added token holds
whitespace (nor its normalized form, for one matched in the normalized text) or strips it.
So a prefix ending just before a whitespace run (after a character that is no whitespace)
gives exactly the whole text's first tokens, offsets included; a suffix starting at a
whitespace run gives the whole text's last tokens from the first one that starts after that run
(those before it may differ: ByteLevel's " next" keeps its space).
"""

from __future__ import annotations

import json
import re
import weakref
from dataclasses import dataclass, field

from tokenizers import Encoding, Tokenizer
from tokenizers.normalizers import Normalizer

from serving.ascii_normalizers import encode_plain, encode_plain_fast
from serving.spec import TextInput, TextsInput, Truncation

# The first window: 5 characters per kept token (blog posts take ~4.1 to 4.5 with a word-level
# tokenizer), so it seldom falls short; one that does tells the next one's size.
_FIRST_CHARS_PER_TOKEN = 5
_FIRST_EXTRA = 64
_GROWTH_MARGIN = 1.25
_ALL_SPACES = frozenset(" \t\n\r")  # whitespace for \s, char::is_whitespace and the normalisers
_LOCAL_NORMALIZERS = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "BertNormalizer"}
_MODELS = {"WordLevel", "WordPiece", "BPE", "Unigram"}
_SPLITTERS = {"Whitespace", "WhitespaceSplit", "BertPreTokenizer"}  # end a piece at whitespace
_REFINERS = {"Punctuation", "Digits"}  # split a piece further, never join two
_NO_CUT: frozenset[str] = frozenset()

_CUTS: weakref.WeakKeyDictionary[Tokenizer, frozenset[str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Window:
    """The encoding (no special tokens) of ``text[start:]`` or ``text[:end]``; ``start`` is
    added to its character offsets to index the whole text. ``whole``: the whole text's."""

    encoding: Encoding
    start: int = 0
    whole: bool = True


def budget(tokenizer: Tokenizer, item: TextInput | TextsInput) -> int:
    """The text tokens an input's row holds: ``max_tokens`` less its special tokens."""
    if item.add_special_tokens:
        return item.max_tokens - tokenizer.num_special_tokens_to_add(False)
    return item.max_tokens


@dataclass
class Encodings:
    """Encodings of a request's texts (:func:`word_encoding`), made while validating, used
    once when encoding.

    Keyed by tokenizer, text and the cut (kept tokens, side): a window is exact for its cut
    only. :meth:`take` removes an entry, because encoding truncates it in place.
    """

    found: dict[tuple[int, str, int, bool, str], Window] = field(default_factory=dict)

    def keep(
        self, tokenizer: Tokenizer, text: str, item: TextInput | TextsInput, window: Window
    ) -> None:
        """Store the encoding of ``text`` by ``tokenizer`` for ``item``'s cut."""
        self.found[_key(tokenizer, text, item)] = window

    def get(self, tokenizer: Tokenizer, text: str, item: TextInput | TextsInput) -> Window | None:
        """The stored encoding of ``text`` for ``item``'s cut (kept), or None."""
        return self.found.get(_key(tokenizer, text, item))

    def take(self, tokenizer: Tokenizer, text: str, item: TextInput | TextsInput) -> Window | None:
        """The stored encoding of ``text`` for ``item``'s cut (then forgotten), or None."""
        return self.found.pop(_key(tokenizer, text, item), None)


def _key(
    tokenizer: Tokenizer, text: str, item: TextInput | TextsInput
) -> tuple[int, str, int, bool, str]:
    # What fixes the cut for one tokenizer (its budget), without asking the tokenizer.
    return id(tokenizer), text, item.max_tokens, item.add_special_tokens, item.truncation


def cut_characters(tokenizer: Tokenizer) -> frozenset[str]:
    """The characters at which ``tokenizer``'s texts may be cut without changing a token on
    either side (see the module docstring); empty: only the whole text is exact.

    Read once per tokenizer object (a version load), from its JSON configuration.
    """
    found = _CUTS.get(tokenizer)
    if found is None:
        found = _cut_characters(json.loads(tokenizer.to_str()), tokenizer.normalizer)
        _CUTS[tokenizer] = found
    return found


def _cut_characters(config: dict[str, object], normalizer: Normalizer | None) -> frozenset[str]:
    model, pre = config.get("model"), config.get("pre_tokenizer")
    if not isinstance(model, dict) or model.get("type") not in _MODELS:
        return _NO_CUT
    if config.get("padding") or config.get("truncation"):  # load_tokenizer turns both off
        return _NO_CUT
    if config.get("normalizer") is not None and not _local_normalizer(config["normalizer"]):
        return _NO_CUT
    cuts = _pre_tokenizer_cuts(pre)
    for added in config.get("added_tokens") or []:  # type: ignore[attr-defined]
        stripping = added.get("lstrip") or added.get("rstrip") or added.get("single_word")
        content = added.get("content", "")
        # A normalized added token is matched in the normalized text: NFKC makes "a\u00a8"
        # "a \u0308", which then matches across the raw space of "a \u0308" (a cut).
        if added.get("normalized") and normalizer is not None:
            content += normalizer.normalize_str(content)
        if stripping or any(char.isspace() for char in content):
            return _NO_CUT
    return cuts


def _local_normalizer(normalizer: object) -> bool:
    if not isinstance(normalizer, dict):
        return False
    if normalizer.get("type") == "Sequence":
        return all(_local_normalizer(part) for part in normalizer.get("normalizers", []))
    return normalizer.get("type") in _LOCAL_NORMALIZERS


def _pre_tokenizer_cuts(pre: object) -> frozenset[str]:
    if not isinstance(pre, dict):  # none: the whole text is one piece
        return _NO_CUT
    kind = pre.get("type")
    if kind in _SPLITTERS:
        return _ALL_SPACES
    if kind == "ByteLevel" and pre.get("use_regex", True):
        return _ALL_SPACES
    if kind == "Metaspace" and pre.get("split", True):
        return frozenset(" ")  # only U+0020 becomes the meta space
    if kind == "Sequence":
        parts = [
            part.get("type") if isinstance(part, dict) else None
            for part in pre.get("pretokenizers", [])
        ]
        if parts and parts[0] in _SPLITTERS and all(p in _SPLITTERS | _REFINERS for p in parts):
            return _ALL_SPACES
    return _NO_CUT


def windowed(tokenizer: Tokenizer, text: str, budget: int) -> bool:
    """Whether :func:`kept_window` would try a window of ``text`` (else it encodes it whole:
    callers may then batch such texts in one call)."""
    return _first_size(budget) < len(text) and bool(cut_characters(tokenizer))


def _first_size(budget: int) -> int:
    return _FIRST_CHARS_PER_TOKEN * (budget + 1) + _FIRST_EXTRA


def kept_window(
    tokenizer: Tokenizer,
    text: str,
    budget: int,
    truncation: Truncation,
    *,
    offsets: bool = True,
    cover: int | None = None,
) -> Window:
    """An encoding of ``text`` whose ``budget`` tokens at the kept end (its first ones, or its
    last with ``truncation="left"``) and one more are the whole text's, as ids, tokens and
    offsets (``+ start``); the whole text's encoding when no shorter window is exact.

    ``cover``: a character index whose token must be among the exact ones too (the first
    letter, whose token the ``no_words`` rule looks up). ``offsets=False``: ids only, every
    span ``(0, 0)``, for a right cut (a left cut needs spans to find its exact tokens).
    """
    cuts = cut_characters(tokenizer)
    size = _first_size(budget)
    while cuts and size < len(text):
        window = (_prefix if truncation == "right" else _suffix)(
            tokenizer, text, budget, size, cuts, offsets, cover
        )
        if isinstance(window, Window):
            return window
        # Too few tokens (``window`` of them; 0: none, or no cut found): grow to what their
        # density projects, at least double, so a text is tokenised about twice at most.
        projected = size * (budget + 2) * _GROWTH_MARGIN / window if window else 0
        size = max(2 * size, int(min(projected, len(text))))
    return Window(_encode(tokenizer, text, offsets))


def _encode(tokenizer: Tokenizer, text: str, offsets: bool) -> Encoding:
    if offsets:
        return encode_plain(tokenizer, text)
    return encode_plain_fast(tokenizer, [text])[0]


def _boundary(cuts: frozenset[str]) -> re.Pattern[str]:
    # A cut character after a character that is no whitespace of any kind: U+00A0 before a
    # run joins it for ByteLevel's \s, and Metaspace splits at U+0020 only.
    return re.compile("(?<!\\s)[" + re.escape("".join(sorted(cuts))) + "]")


def _prefix(
    tokenizer: Tokenizer,
    text: str,
    budget: int,
    size: int,
    cuts: frozenset[str],
    offsets: bool,
    cover: int | None,
) -> Window | int:
    # The end: the last boundary within ``size``, searched in the reversed half window.
    half = size // 2
    reverse = "[" + re.escape("".join(sorted(cuts))) + "](?!\\s)"
    found = re.search(reverse, text[half:size][::-1])
    if found is None:
        return 0
    cut = size - found.start() - 1
    if cut <= 0 or text[cut - 1].isspace() or (cover is not None and cover >= cut):
        return 0
    encoding = _encode(tokenizer, text[:cut], offsets)
    return Window(encoding, 0, whole=False) if len(encoding) > budget + 1 else len(encoding)


def _suffix(
    tokenizer: Tokenizer,
    text: str,
    budget: int,
    size: int,
    cuts: frozenset[str],
    offsets: bool,
    cover: int | None,
) -> Window | int:
    # The start: the first boundary in the window's first half; exact tokens are those that
    # start after the whitespace run there (``after``).
    low = max(1, len(text) - size)
    found = _boundary(cuts).search(text, low, low + size // 2)
    if found is None:
        return 0
    start = found.start()
    after = start + len(text[start:]) - len(text[start:].lstrip())
    if cover is not None and cover < after:
        return 0
    encoding = encode_plain(tokenizer, text[start:])
    exact = sum(1 for begin, _ in encoding.offsets if begin >= after - start)
    return Window(encoding, start, whole=False) if exact > budget + 1 else exact
