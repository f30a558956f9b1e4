"""Request instances -> id tensors, and a text's segments, by a version's serving spec.

Training (warmup requests, supervision of segment weights) and the gateway (every request)
call these same functions, so a served model sees exactly the ids it was trained on and
segment weights map back to the same pieces of text.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from serving.spec import SegmentRule, ServingSpec, TextInput, TextsInput
from serving.tokenization import (
    cut_to_fit,
    id_matrix,
    join_posts,
    literal_posts,
    literal_text,
    plain_encodings,
)
from serving.windows import Encodings, Window, budget, kept_window, windowed

Tensors = dict[str, npt.NDArray[np.int32]]
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
    if tokenizer.encode(text[start : start + _WINDOW], add_special_tokens=False).ids:
        return True
    return bool(tokenizer.encode(text[start:], add_special_tokens=False).ids)


_CONTROL_TOKENS: weakref.WeakKeyDictionary[Tokenizer, tuple[str, ...]] = weakref.WeakKeyDictionary()


def control_tokens(tokenizer: Tokenizer) -> tuple[str, ...]:
    """The tokenizer's special tokens other than its unknown token (``[PAD]``, ``[SEP]``,
    ``[CLS]``, ``[MASK]``): texts are tokenised with them recognised (a profile's posts are
    joined with ``[SEP]``), so a text spelling one gets that id, which carries no word (the
    pad id is even masked out). The unknown token stands for words: not among them.
    """
    found = _CONTROL_TOKENS.get(tokenizer)
    if found is None:
        unknown = getattr(tokenizer.model, "unk_token", None)
        found = tuple(
            token.content
            for token in tokenizer.get_added_tokens_decoder().values()
            if token.special and token.content and token.content != unknown
        )
        _CONTROL_TOKENS[tokenizer] = found
    return found


def blank_control_tokens(tokenizer: Tokenizer, text: str) -> str:
    """``text`` with each :func:`control_tokens` spelling blanked, at the same positions:
    "[PAD]" spells a word's letters, yet is padding."""
    for token in control_tokens(tokenizer):
        text = text.replace(token, " " * len(token))
    return text


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
    position = _letter(blank_control_tokens(tokenizer, text), item.truncation == "right")
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
    controls = control_tokens(tokenizer)
    reach = len(part) + max(map(len, controls), default=0)
    window = text[:reach] if first else text[max(0, len(text) - reach) :]
    if any(token in window for token in controls):
        clean = _outside_words(blank_control_tokens(tokenizer, text), first)
        part = text[: len(clean)] if first else text[len(text) - len(clean) :]
    if 4 * len(part) < item.max_tokens - 4:  # fewer tokens than the budget, whatever they are
        return True
    return word_kept(
        tokenizer, part, Window(tokenizer.encode(part, add_special_tokens=False)), item
    )


def _outside_words(text: str, first: bool) -> str:
    """``text`` up to and with its first letter or digit (``first``), else from its last one
    on; the whole text if it has none."""
    position = _letter(text, first)
    if position is None:
        return text
    return text[: position + 1] if first else text[position:]


def _letter(text: str, first: bool) -> int | None:
    """The index of ``text``'s first letter or digit (``first``), else of its last; None."""
    if first:
        word = WORD_PATTERN.search(text)
        return None if word is None else word.start()
    return next((i for i in range(len(text) - 1, -1, -1) if text[i].isalnum()), None)


def input_text(item: TextInput | TextsInput, value: Any, tokenizer: Tokenizer | None = None) -> str:
    """The one text an input value becomes: a string, a list joined (and cut) as trained.

    With ``tokenizer`` (the model's reading): a special token spelt in it is plain text
    (:func:`serving.tokenization.literal_text`; the same length, so offsets index the
    client's text). Without (the word rules' reading, in which a spelt special token is no
    word, :func:`has_words`): as sent."""
    if tokenizer is None:
        if item.kind == "texts":
            return join_posts(list(value), item.separator, item.max_joined_chars)
        return str(value)
    if item.kind == "texts":
        return literal_posts(tokenizer, list(value), item.separator, item.max_joined_chars)
    return literal_text(tokenizer, str(value))


def word_encoding(tokenizer: Tokenizer, text: str, item: TextInput | TextsInput) -> Window | None:
    """The text's encoding for ``item`` (no special tokens) if it passes :func:`has_words`,
    else None: a window of it whose kept tokens are the whole text's
    (:func:`serving.windows.kept_window`), covering its first letter or digit (its last, for
    a left cut) so :func:`word_kept` finds that letter's token.

    For a text whose encoding is needed anyway (a request's text input): one tokenisation
    serves the rule and the model. A text has words when a token ends after its first
    letter or digit; a text where none does is judged by :func:`has_words` itself.
    """
    word = WORD_PATTERN.search(text)
    if word is None:
        return None
    controls = any(token in text for token in control_tokens(tokenizer))
    kept = budget(tokenizer, item)
    if windowed(tokenizer, text, kept):
        letters = blank_control_tokens(tokenizer, text) if controls else text
        cover = _letter(letters, item.truncation == "right")
        window = kept_window(tokenizer, text, kept, item.truncation, cover=cover)
    else:  # short (most requests): whole, without the window's bookkeeping
        window = Window(tokenizer.encode(text, add_special_tokens=False))
    if controls:
        return window if has_words(tokenizer, text) else None
    start, encoding = word.start(), window.encoding
    # The last token usually ends after the first letter: asked alone first, since reading
    # ``offsets`` builds a list of every token's span. A window's tokens are the whole
    # text's (offsets + window.start); one ending after the letter settles it, else the
    # whole text is judged (a right window's later tokens were not seen).
    last = encoding.token_to_chars(len(encoding) - 1) if len(encoding) else None
    if last is not None and last[1] + window.start > start:
        return window
    if any(end + window.start > start for _, end in encoding.offsets):
        return window
    if not window.whole:
        return _whole_words(tokenizer, text, start)
    return window if has_words(tokenizer, text) else None


def _whole_words(tokenizer: Tokenizer, text: str, start: int) -> Window | None:
    encoding = tokenizer.encode(text, add_special_tokens=False)
    if any(end > start for _, end in encoding.offsets) or has_words(tokenizer, text):
        return Window(encoding)
    return None


@dataclass(frozen=True)
class Encoded:
    """Signature inputs and, per input field a segment head reads, each instance's encoding
    as the model saw it.

    ``encodings[field][row]`` is cut like the row of its tensor, without special tokens
    (what :func:`segment_texts` splits). Other inputs' encodings are not kept: a cut encoding
    still holds the whole text's tokens (``truncate`` keeps the rest as ``overflowing``), and
    a request holds ``Encoded`` while it waits for the model server: a profile of 1 MB of
    one-letter words held ~140 MB, and 16 such requests in flight took a worker past 700 MB.
    """

    tensors: Tensors
    encodings: dict[str, list[Window]]


def encode_instances(
    spec: ServingSpec,
    tokenizers: Mapping[str, Tokenizer],
    instances: Sequence[Mapping[str, Any]],
) -> Tensors:
    """Signature inputs for validated instances: int32 ``[len(instances), longest]`` each.

    ``tokenizers`` maps each tokenizer file name of the spec to its loaded tokenizer. Rows are
    padded with ``spec.pad_id`` to the batch's longest text (at least one column).
    """
    return encode_batch(spec, tokenizers, instances).tensors


def encode_batch(
    spec: ServingSpec,
    tokenizers: Mapping[str, Tokenizer],
    instances: Sequence[Mapping[str, Any]],
    known: Encodings | None = None,
) -> Encoded:
    """:func:`encode_instances` and the encodings; texts found in ``known`` are not tokenised."""
    tensors: Tensors = {}
    encodings: dict[str, list[Window]] = {}
    # Only segment heads read character spans: other inputs' texts skip making them.
    segmented = {head.input_field for head in spec.segment_heads()}
    for item in spec.inputs:
        tokenizer = tokenizers[item.tokenizer]
        kept, offsets = budget(tokenizer, item), item.field in segmented
        texts = [input_text(item, instance[item.field], tokenizer) for instance in instances]
        cut = [known.take(tokenizer, text, item) if known else None for text in texts]
        # Long texts: a window each; the others whole, in one call as before windows.
        short = [
            i for i, text in enumerate(texts) if not (cut[i] or windowed(tokenizer, text, kept))
        ]
        if short:
            whole = plain_encodings(tokenizer, [texts[i] for i in short], offsets=offsets)
            for index, encoding in zip(short, whole, strict=True):
                cut[index] = Window(encoding)
        windows = [
            found or kept_window(tokenizer, text, kept, item.truncation, offsets=offsets)
            for text, found in zip(texts, cut, strict=True)
        ]
        tensors[item.tensor] = id_matrix(
            tokenizer,
            [window.encoding for window in windows],
            item.max_tokens,
            item.truncation,
            add_special_tokens=item.add_special_tokens,
            pad_id=spec.pad_id,
        )
        if offsets:
            encodings[item.field] = windows
    return Encoded(tensors, encodings)


def truncated_encoding(tokenizer: Tokenizer, text: str, item: TextInput | TextsInput) -> Window:
    """The text's encoding without special tokens, cut as :func:`encode_instances` cuts it
    (offsets ``+ start`` index ``text``)."""
    window = kept_window(tokenizer, text, budget(tokenizer, item), item.truncation)
    cut_to_fit(
        tokenizer, window.encoding, item.max_tokens, item.truncation, item.add_special_tokens
    )
    return window


def segment_texts(
    tokenizer: Tokenizer,
    text: str,
    item: TextInput | TextsInput,
    rule: SegmentRule,
    encoding: Window | None = None,
) -> list[str | None]:
    """The text of each segment slot (``rule.max_segments`` entries; None where no segment).

    Follows :class:`serving.spec.SegmentRule`: segments end at ``rule.separator_token`` or at
    the last kept token; slot 0 is the last segment when ``rule.order == "last_first"``.
    ``encoding``: the text's cut encoding from :func:`encode_batch` (else it is tokenised).
    """
    if encoding is None:  # the model's reading of the text; its spans still index ``text``
        encoding = truncated_encoding(tokenizer, literal_text(tokenizer, text), item)
    window = encoding
    tokens, offsets = window.encoding.tokens, window.encoding.offsets  # each builds a list
    separator = rule.separator_token
    spans: list[tuple[int, int]] = []
    first = 0  # the segment's first token
    for last in [index for index, token in enumerate(tokens) if token == separator]:
        spans.append((offsets[first][0], offsets[last][1]))
        first = last + 1
    if first < len(tokens):
        spans.append((offsets[first][0], offsets[-1][1]))
    if rule.order == "last_first":
        spans.reverse()
    shift = window.start
    slots: list[str | None] = [text[shift + begin : shift + end].strip() for begin, end in spans]
    slots = slots[: rule.max_segments]
    return slots + [None] * (rule.max_segments - len(slots))
