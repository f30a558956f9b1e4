"""A client's text as plain text: a special token it spells (``[PAD]``, ``[SEP]``) is never
the tokenizer's control id. Training (profile, similarity) and the gateway read texts through
these functions alike, so the ids a model was trained on are those it is served.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from serving.tokenization import join_posts

Spellings = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Literals:
    """A tokenizer's plain spellings, and its special tokens matched in the *normalized* text
    (``AddedToken(normalized=True)``): their normalized forms and ids."""

    spellings: Spellings
    normalized: tuple[str, ...]
    normalized_ids: frozenset[int]
    # The special tokens but the unknown one (``serving.words``' control tokens), and the ids
    # of those matched in the normalized text.
    controls: tuple[str, ...]
    controls_normalized_ids: frozenset[int]


# id(tokenizer) -> (a weak reference to it, its literals): read on every request's texts, and
# a WeakKeyDictionary lookup makes a weak reference each time (~1 us); the entry leaves with
# its tokenizer (the reference's callback).
_LITERALS: dict[int, tuple[weakref.ref[Tokenizer], _Literals]] = {}


def literal_spellings(tokenizer: Tokenizer) -> Spellings:
    """``(special token, its spelling as plain text)`` per special token of ``tokenizer``
    (``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``), longest first.

    ``tokenizers`` matches an added token's spelling anywhere in a text, so a client's
    literal ``"[SEP]"`` became the real separator id and ``"[PAD]"`` a padding id the model
    masks out: ``"Mary moved to the [PAD] bathroom."`` answered ``bedroom``. The plain
    spelling is a same-length variant (lower, upper or swapped case) that the tokenizer
    encodes to exactly the ids it gives the token with ``encode_special_tokens`` (the token
    read as ordinary text: ``[``, ``sep``, ``]``), and that matches no added token; when no
    variant does (a case-sensitive tokenizer), blanks. Same length: character offsets (a
    segment's text, a window's cut) stay those of the client's text. Computed once per
    tokenizer object (a copy of it encodes the tokens as text), at a version's load in the
    gateway (:func:`serving.gateway.runtime.load_runtime`), not on a request.
    """
    return _literals(tokenizer).spellings


def _literals(tokenizer: Tokenizer) -> _Literals:
    entry = _LITERALS.get(id(tokenizer))
    if entry is not None and entry[0]() is tokenizer:
        return entry[1]
    added = tokenizer.get_added_tokens_decoder()
    specials = sorted(
        {token.content for token in added.values() if token.special and token.content},
        key=lambda content: (-len(content), content),
    )
    as_text = Tokenizer.from_str(tokenizer.to_str())
    as_text.encode_special_tokens = True
    # A special token added with normalized=True is matched in the normalized text: under a
    # Lowercase or NFKC normaliser "[sep]", or "SEP" in full-width brackets, is the separator.
    normalizer = tokenizer.normalizer
    matched = {
        index: token.content
        for index, token in added.items()
        if token.special and token.content and token.normalized and normalizer is not None
    }
    contents = frozenset(token.content for token in added.values() if token.content)
    # The unknown token stands for words: it is no control token (serving.words).
    unknown = getattr(tokenizer.model, "unk_token", None)
    controls = {
        index: token.content
        for index, token in added.items()
        if token.special and token.content and token.content != unknown
    }
    found = _Literals(
        tuple((token, _plain_spelling(tokenizer, as_text, token, contents)) for token in specials),
        tuple({normalizer.normalize_str(c) for c in matched.values()}) if normalizer else (),
        frozenset(matched),
        tuple(controls.values()),
        frozenset(index for index in controls if index in matched),
    )
    key = id(tokenizer)
    _LITERALS[key] = (weakref.ref(tokenizer, lambda _: _LITERALS.pop(key, None)), found)
    return found


def controls(tokenizer: Tokenizer) -> tuple[tuple[str, ...], frozenset[int]]:
    """The tokenizer's special tokens other than its unknown token, and the ids of those it
    matches in the normalized text (``normalized=True``): from the same per-tokenizer cache as
    :func:`literal_spellings` (:func:`serving.words.control_tokens` reads them per text)."""
    found = _literals(tokenizer)
    return found.controls, found.controls_normalized_ids


def _plain_spelling(
    tokenizer: Tokenizer, as_text: Tokenizer, token: str, added: frozenset[str]
) -> str:
    try:
        ids = as_text.encode(token, add_special_tokens=False).ids
        for spelling in (token.lower(), token.upper(), token.swapcase()):
            if len(spelling) != len(token) or _holds_any(spelling, added):
                continue
            if tokenizer.encode(spelling, add_special_tokens=False).ids == ids:
                return spelling
    except Exception:  # tokenizers raises a bare Exception (a vocabulary without its
        pass  # unknown token fails on a word: the load check refuses such a version)
    return " " * len(token)


def _holds_any(spelling: str, added: frozenset[str]) -> bool:
    """Whether an added token's content is a substring of ``spelling``: its substrings looked
    up (a token's length squared), not each added token searched for (thousands of reserved
    special tokens made a version's load quadratic in their number: ~2 s for 2,000)."""
    if len(added) * 2 < len(spelling) ** 2:  # few tokens, a long spelling: search for each
        return any(other in spelling for other in added)
    return any(
        spelling[start:end] in added
        for start in range(len(spelling))
        for end in range(start + 1, len(spelling) + 1)
    )


def literal_text(tokenizer: Tokenizer, text: str) -> str:
    """``text`` with each special token's spelling replaced by its plain spelling
    (:func:`literal_spellings`): a client's text is read as text, never as the tokenizer's
    control ids. A special token matched in the normalized text (``normalized=True``) is
    blanked where the tokenizer matches it (:func:`blank_matched_specials`). Cost on a text
    without one: a substring search per special token (and, for a tokenizer with such a
    token, the text's normalisation)."""
    literals = _literals(tokenizer)
    for token, plain in literals.spellings:
        if token in text:
            text = text.replace(token, plain)
    if literals.normalized:
        text = blank_matched_specials(tokenizer, text, literals.normalized_ids)
    return text


def blank_matched_specials(tokenizer: Tokenizer, text: str, ids: frozenset[int]) -> str:
    """``text`` with blanks, at the same positions, over each span the tokenizer matches as a
    special token of ``ids`` that is matched in the normalized text (``normalized=True``;
    others are left to their spellings). Only a text whose normalized form holds one of them
    is tokenised; blanking repeats while it leaves a match (a normaliser that drops blanks
    may join the pieces around one into another)."""
    literals = _literals(tokenizer)
    forms = literals.normalized
    ids = ids & literals.normalized_ids
    normalizer = tokenizer.normalizer
    if not ids or normalizer is None:
        return text
    for _ in range(len(text) + 1):  # each round blanks at least one character
        if not any(form in normalizer.normalize_str(text) for form in forms):
            return text
        encoding = tokenizer.encode(text, add_special_tokens=False)
        spans = [encoding.offsets[i] for i, found in enumerate(encoding.ids) if found in ids]
        # The unknown token's id is also a word the vocabulary lacks: only a span spelling
        # the token (once normalized) is the token.
        spans = [(a, b) for a, b in spans if normalizer.normalize_str(text[a:b]) in forms]
        if not spans:
            return text
        chars = list(text)
        for start, end in spans:
            chars[start:end] = " " * (end - start)
        text = "".join(chars)
    return text


def literal_posts(
    tokenizer: Tokenizer, posts: Sequence[str], separator: str, max_chars: int | None = None
) -> str:
    """:func:`join_posts` of the posts as plain text (:func:`literal_text`): the separator
    the join puts between them stays the only one. Cost on posts without a special token's
    spelling: one substring count per special token over the joined text."""
    joined = join_posts(posts, separator)
    expected = {separator: len(posts) - 1}
    literals = _literals(tokenizer)
    if literals.normalized or any(
        joined.count(token) != expected.get(token, 0) for token, _ in literals.spellings
    ):
        joined = join_posts([literal_text(tokenizer, post) for post in posts], separator)
    return joined[:max_chars]
