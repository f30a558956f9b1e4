"""Request instances -> id tensors, and a text's segments, by a version's serving spec.

Training (warmup requests, supervision of segment weights) and the gateway (every request)
call these same functions, so a served model sees exactly the ids it was trained on and
segment weights map back to the same pieces of text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from serving.ascii_normalizers import encode_plain
from serving.literals import literal_posts, literal_text
from serving.spec import SegmentRule, ServingSpec, TextInput, TextsInput
from serving.tokenization import cut_to_fit, id_matrix, join_posts, plain_encodings
from serving.windows import Encodings, Window, budget, kept_window, windowed
from serving.words import (
    WORD_PATTERN,
    blank_control_tokens,
    has_words,
    letter_index,
    spells_control,
)

Tensors = dict[str, npt.NDArray[np.int32]]


def input_text(item: TextInput | TextsInput, value: Any, tokenizer: Tokenizer | None = None) -> str:
    """The one text an input value becomes: a string, a list joined (and cut) as trained.

    With ``tokenizer`` (the model's reading): a special token spelt in it is plain text
    (:func:`serving.literals.literal_text`; the same length, so offsets index the
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
    controls = spells_control(tokenizer, text)
    kept = budget(tokenizer, item)
    if windowed(tokenizer, text, kept):
        letters = blank_control_tokens(tokenizer, text) if controls else text
        cover = letter_index(letters, item.truncation == "right")
        window = kept_window(tokenizer, text, kept, item.truncation, cover=cover)
    else:  # short (most requests): whole, without the window's bookkeeping
        window = Window(encode_plain(tokenizer, text))
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
    encoding = encode_plain(tokenizer, text)
    if any(end > start for _, end in encoding.offsets) or has_words(tokenizer, text):
        return Window(encoding)
    return None


@dataclass(frozen=True)
class Encoded:
    """Signature inputs and, per input field a segment or token head reads, each instance's encoding
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
    # Only segment and token heads read character spans: other inputs' texts skip them.
    segmented = spec.span_fields
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
    slots: list[str | None] = [
        text[shift + begin : with_marks(text, shift + end)].strip() for begin, end in spans
    ]
    slots = slots[: rule.max_segments]
    return slots + [None] * (rule.max_segments - len(slots))


def with_marks(text: str, end: int, limit: int | None = None) -> int:
    """``end`` moved past the combining marks right after it (Unicode categories Mn, Mc, Me),
    up to ``limit`` (the next token's start; default the text's end).

    A normalizer that strips accents (``BertNormalizer``, ``StripAccents`` after NFD) maps a
    mark to no token, so a token's offsets end before it: a decomposed "Jose\u0301" was the
    word "Jose", its accent left dangling after the span (a VS16 after an emoji likewise).
    A mark belongs to the character before it (a grapheme cluster, UAX #29).
    """
    stop = len(text) if limit is None else limit
    # No mark is below U+0300: a comparison spares the category look-up for Latin-1 text.
    while end < stop and text[end] >= "\u0300" and unicodedata.category(text[end])[0] == "M":
        end += 1
    return end
