"""The ``no_words`` rules: whether a text has a word its tokenizer reads, and whether an input's
cut keeps one (the gateway's validation, ``serving.gateway.word_rules``; the encoding's short
path, :func:`serving.encoding.word_encoding`).
"""

from __future__ import annotations

import re

from tokenizers import Tokenizer

from serving.ascii_normalizers import encode_plain
from serving.literals import blank_matched_specials, controls
from serving.spec import TextInput, TextsInput
from serving.windows import Window, budget

# A word needs a letter or a digit (any script): Python's Unicode "\w" without "_". The
# OpenAPI document gives the rule as "[\p{L}\p{N}]" (JSON Schema regexes are ECMA-262's,
# whose "\w" is ASCII only).
WORD_PATTERN = re.compile(r"[^\W_]")
_WINDOW = 64  # characters tokenised first: enough to find a token in almost every text


def has_words(tokenizer: Tokenizer, text: str) -> bool:
    """Whether ``text`` has a letter or digit from which the tokenizer makes a token.

    False for "", whitespace, zero-width, control and format characters, punctuation or
    symbols alone (emoji), the tokenizer's special tokens spelt out (``[PAD]``, ``[SEP]``:
    :func:`control_tokens`), and texts the tokenizer's normaliser empties. A text of unknown
    words is True: it becomes [UNK] ids, as in training. Cost: a regex search for the first
    letter or digit, then the tokenisation of a short window from there (of the rest of the
    text only when the window gives no token).
    """
    text = blank_control_tokens(tokenizer, text)
    word = WORD_PATTERN.search(text)
    if word is None:
        return False
    start = word.start()
    if encode_plain(tokenizer, text[start : start + _WINDOW]).ids:
        return True
    return bool(encode_plain(tokenizer, text[start:]).ids)


def control_tokens(tokenizer: Tokenizer) -> tuple[str, ...]:
    """The tokenizer's special tokens other than its unknown token (``[PAD]``, ``[SEP]``,
    ``[CLS]``, ``[MASK]``): texts are tokenised with them recognised (a profile's posts are
    joined with ``[SEP]``), so a text spelling one gets that id, which carries no word (the
    pad id is even masked out). The unknown token stands for words: not among them.
    """
    return controls(tokenizer)[0]


def spells_control(tokenizer: Tokenizer, text: str) -> bool:
    """Whether ``text`` spells a :func:`control_tokens` token as the tokenizer matches it (as
    written, or once normalized for one added with ``normalized=True``)."""
    tokens, matched = controls(tokenizer)
    if any(token in text for token in tokens):
        return True
    return bool(matched) and blank_matched_specials(tokenizer, text, matched) is not text


def blank_control_tokens(tokenizer: Tokenizer, text: str) -> str:
    """``text`` with each :func:`control_tokens` spelling blanked, at the same positions:
    "[PAD]" spells a word's letters, yet is padding. One matched in the normalized text
    (``normalized=True``: "[pad]" under a Lowercase normaliser) is blanked where the
    tokenizer matches it (:func:`serving.literals.blank_matched_specials`)."""
    tokens, matched = controls(tokenizer)
    for token in tokens:
        if token in text:  # a search, not a copy (thousands of reserved tokens)
            text = text.replace(token, " " * len(token))
    return blank_matched_specials(tokenizer, text, matched) if matched else text


def word_kept(
    tokenizer: Tokenizer, text: str, window: Window, item: TextInput | TextsInput
) -> bool:
    """Whether the input's cut (``max_tokens`` with its special tokens, ``truncation``) keeps
    a token of a letter or digit of ``text``, encoded (no special tokens) as ``window``
    (:func:`word_encoding`: its kept tokens, and that letter's, are the whole text's):
    "!" * 500 + " Mary" cut to its first 64 tokens keeps punctuation only.

    The first letter's token is the earliest with a word, so a right cut keeps a word when it
    keeps that token (a left cut: the last letter's). A letter no token covers (the
    normaliser dropped it) is not judged here: :func:`has_words` judged the text.
    """
    kept, encoding = budget(tokenizer, item), window.encoding
    if len(encoding) <= kept:  # a window is longer than ``kept``: only a whole text is shorter
        return True
    position = letter_index(blank_control_tokens(tokenizer, text), item.truncation == "right")
    if kept <= 0 or position is None:
        return False
    token = encoding.char_to_token(position - window.start)
    if token is None:
        return True
    # A left window's last tokens are the text's last: counted from the end they agree.
    return token < kept if item.truncation == "right" else token >= len(encoding) - kept


def word_kept_in(tokenizer: Tokenizer, text: str, item: TextInput | TextsInput) -> bool:
    """:func:`word_kept` for a text whose encoding is not at hand (a list input's joined
    text): only the part that decides is tokenised, the text up to its first letter or digit
    (a right cut; a left cut: from its last one), and only when that part could hold
    ``max_tokens`` tokens (at most one per UTF-8 byte, four per character).
    """
    first = item.truncation == "right"
    part = _outside_words(text, first)
    # "[SEP]" spells letters: where a control token overlaps the part, find the word again in
    # the text with them blanked (kept whole in the window: it reaches one token further).
    reach = len(part) + max(map(len, control_tokens(tokenizer)), default=0)
    window = text[:reach] if first else text[max(0, len(text) - reach) :]
    if spells_control(tokenizer, window):
        clean = _outside_words(blank_control_tokens(tokenizer, text), first)
        part = text[: len(clean)] if first else text[len(text) - len(clean) :]
    if 4 * len(part) < item.max_tokens - 4:  # fewer tokens than the budget, whatever they are
        return True
    return word_kept(tokenizer, part, Window(encode_plain(tokenizer, part)), item)


def _outside_words(text: str, first: bool) -> str:
    """``text`` up to and with its first letter or digit (``first``), else from its last one
    on; the whole text if it has none."""
    position = letter_index(text, first)
    if position is None:
        return text
    return text[: position + 1] if first else text[position:]


def letter_index(text: str, first: bool) -> int | None:
    """The index of ``text``'s first letter or digit (``first``), else of its last; None."""
    if first:
        word = WORD_PATTERN.search(text)
        return None if word is None else word.start()
    return next((i for i in range(len(text) - 1, -1, -1) if text[i].isalnum()), None)
