"""Per-token label distributions -> labelled words with character offsets (``token_labels``).

The rule of :class:`serving.spec.TokenLabelsHead`: :func:`token_words` reads, before the
model call, which row positions hold which words of the client's text (special tokens and
padding hold none; tokens cut by truncation are not in the row); :func:`token_answer` reads
the model's ``[tokens, len(labels)]`` rows at those positions. A trainer should build its
labels with the same :func:`token_words` (training/README.md says how), so that a word is
supervised where it is read; the project's own models have no token head.
"""

from __future__ import annotations

import unicodedata
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from serving.encoding import segment_texts, truncated_encoding, with_marks
from serving.literals import literal_text
from serving.spec import SegmentWeightsHead, TextInput, TextsInput, TokenLabelsHead
from serving.windows import Window

_LEADS: weakref.WeakKeyDictionary[Tokenizer, dict[bool, int | None]] = weakref.WeakKeyDictionary()
# Trimmed from a unit's span: Unicode's White_Space property (PropList.txt), which Rust's
# char::is_whitespace and regex \s (the pre-tokenizers') follow. ByteLevel keeps a space on a
# word and makes a token of a whitespace run: one of U+2003, U+2028, NEL... was answered as a
# word when only eight of these were trimmed. (Python's str.isspace adds U+001C..U+001F,
# which the tokenizers read as symbols.)
_BLANKS = frozenset(
    "\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True)
class TokenWords:
    """One instance's labelled units (words, or tokens for ``aggregation: none``).

    ``positions[i]``: the row position (special tokens counted) whose label distribution
    unit ``i`` takes; ``spans[i]``: its ``(start, end)`` characters in the client's text;
    ``texts[i]``: ``text[start:end]``; ``text``: the client's text, for entity spans across
    units. ``truncated``: tokens past the row were not labelled.
    """

    positions: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    texts: tuple[str, ...]
    text: str
    truncated: bool


Spans = Sequence[str | None] | TokenWords  # what a span head reads of one instance's text


def head_spans(
    head: SegmentWeightsHead | TokenLabelsHead,
    tokenizer: Tokenizer,
    text: str,
    item: TextInput | TextsInput,
    window: Window | None = None,
) -> Spans:
    """What a head reading character spans needs of one instance's text, taken before the
    model call: a segment head's slot texts (:func:`serving.encoding.segment_texts`), a token
    head's units (:func:`token_words`)."""
    if isinstance(head, SegmentWeightsHead):
        return segment_texts(tokenizer, text, item, head.rule, window)
    return token_words(tokenizer, text, item, head, window)


def token_words(
    tokenizer: Tokenizer,
    text: str,
    item: TextInput | TextsInput,
    head: TokenLabelsHead,
    window: Window | None = None,
) -> TokenWords:
    """The units ``head`` labels in ``text`` (the client's text of ``item``).

    ``window``: the text's cut encoding from :func:`serving.encoding.encode_batch` (else the
    text is tokenised and cut here, as for the model). A word is a run of tokens of one
    ``Encoding.word_ids`` value (the pre-tokenizer's piece); a token without one (an added
    token) is a word alone. Spans are trimmed of whitespace; a unit left with no characters
    is not answered.
    """
    if window is None:
        window = truncated_encoding(tokenizer, literal_text(tokenizer, text), item)
    encoding = window.encoding
    lead = leading_specials(tokenizer, item.add_special_tokens)
    if lead is None:  # no probe token: the row itself, post-processed again
        row = tokenizer.post_process(encoding, None, item.add_special_tokens)
        positions = [index for index, special in enumerate(row.special_tokens_mask) if not special]
    else:
        positions = list(range(lead, lead + len(encoding)))
    words, offsets = encoding.word_ids, encoding.offsets
    whole = head.aggregation == "first"
    # Computed once: each call builds the list of every cut part (one per max_tokens).
    overflowing = encoding.overflowing if whole or window.whole else []
    cut = _cut_word(words, overflowing, item.truncation) if whole else None
    groups: list[tuple[int, int, int]] = []  # (row position, start, end) per unit
    previous: int | None = None
    for index, (start, end) in enumerate(offsets):
        word = words[index] if whole else None
        if cut is not None and word == cut:
            continue
        if groups and word is not None and word == previous:
            position, first, _ = groups[-1]
            groups[-1] = (position, first, end)
        else:
            groups.append((positions[index], start, end))
        previous = word
    shift = window.start
    kept: list[tuple[int, int, int]] = []
    size = len(text)
    for index, (position, start, end) in enumerate(groups):
        end += shift
        if end < size and text[end] >= "\u0300":  # no combining mark is below U+0300
            limit = groups[index + 1][1] + shift if index + 1 < len(groups) else None
            end = with_marks(text, end, limit)
        begin, stop = _trimmed(text, start + shift, end)
        if begin < stop and (text[begin] < "\xad" or not _invisible(text, begin, stop)):
            if (
                text[begin] >= "\u0300"
                and kept
                and kept[-1][1] <= begin <= kept[-1][2]
                and with_marks(text, begin, stop) == stop
            ):
                # Marks alone, right after (or within) a unit: ByteLevel splits a decomposed
                # "Jose\u0301" into "Jose" and "\u0301" (each byte a token of the mark's
                # span); they belong to the unit's last character.
                kept[-1] = (kept[-1][0], kept[-1][1], max(stop, kept[-1][2]))
            else:
                kept.append((position, begin, stop))
    truncated = not window.whole or len(overflowing) > 0
    return TokenWords(
        positions=tuple(position for position, _, _ in kept),
        spans=tuple((start, end) for _, start, end in kept),
        texts=tuple(text[start:end] for _, start, end in kept),
        text=text,
        truncated=truncated,
    )


def leading_specials(tokenizer: Tokenizer, add_special_tokens: bool) -> int | None:
    """How many special tokens the post-processor puts before a text's tokens (``[CLS]``: 1),
    or None when a probe text gives no token to find them by. The text's tokens follow as
    one run (a template's ``$A``), so token ``i`` is at row position ``lead + i``.

    Cached per tokenizer: post-processing the cut encoding again would also process the
    overflowing tokens it keeps (a 1 MB text cut to 10 tokens: 20,000 pieces, ~0.2 s)."""
    leads = _LEADS.setdefault(tokenizer, {})
    if add_special_tokens not in leads:
        probe = tokenizer.encode("a", add_special_tokens=False)
        row = tokenizer.post_process(probe, None, add_special_tokens)
        mask = row.special_tokens_mask
        leads[add_special_tokens] = mask.index(0) if len(probe) and 0 in mask else None
    return leads[add_special_tokens]


def _cut_word(
    words: Sequence[int | None], overflowing: Sequence[Encoding], truncation: str
) -> int | None:
    """The word id of the row's word that truncation cut in two (some of its tokens kept,
    others not), else None. Such a word is not answered: cut at its start, its first kept
    token is a later sub-token (whose label is not the word's under the "first" rule); cut at
    its end, its kept characters are a fragment, not a word of the text.

    ``overflowing[0]`` holds the tokens next to the cut (its last ones for a left cut, its
    first for a right one); a window's tokens one past the cut are the whole text's
    (:func:`serving.windows.kept_window`), so their word ids are too.
    """
    if not words or not overflowing:
        return None
    beside = overflowing[0].word_ids
    if not beside:
        return None
    kept, dropped = (words[0], beside[-1]) if truncation == "left" else (words[-1], beside[0])
    return kept if kept is not None and kept == dropped else None


def _invisible(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is only format characters (Unicode category Cf: U+200B,
    a BOM, U+2060, a soft hyphen): ByteLevel makes a word of such a run (its regex's
    ``[^\\s\\p{L}\\p{N}]+``), which was answered as a labelled word no one sees (a text read
    from a file with a BOM began with one). One category look-up for a unit of a letter."""
    if unicodedata.category(text[start]) != "Cf":  # the caller skips those below U+00AD
        return False
    return all(unicodedata.category(char) == "Cf" for char in text[start + 1 : end])


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _BLANKS:
        start += 1
    while end > start and text[end - 1] in _BLANKS:
        end -= 1
    return start, end


def token_answer(
    head: TokenLabelsHead, values: npt.NDArray[np.float64], words: TokenWords
) -> dict[str, Any]:
    """The answer for one instance from its ``[tokens, len(labels)]`` output rows.

    Each unit takes the most probable label at its position (ties: the first label) and that
    probability as ``score``; units labelled ``outside_label`` are left out of ``words``.
    Raises IndexError when a position is past the output's ``tokens`` (the caller's
    ``OutputError``).
    """
    if words.positions and max(words.positions) >= values.shape[0]:
        raise IndexError(
            f"output {head.output!r} has {values.shape[0]} token positions, the row "
            f"{max(words.positions) + 1}"
        )
    rows = values[list(words.positions)] if words.positions else values[:0]
    best: list[int] = rows.argmax(axis=1).tolist() if len(rows) else []
    scores: list[float] = rows[np.arange(len(best)), best].tolist() if best else []
    units = [
        {"text": text, "start": start, "end": end, "label": head.labels[index], "score": score}
        for text, (start, end), index, score in zip(
            words.texts, words.spans, best, scores, strict=True
        )
    ]
    answer: dict[str, Any] = {
        "words": [unit for unit in units if unit["label"] != head.outside_label],
        "truncated": words.truncated,
    }
    if head.scheme == "IOB2":
        answer["entities"] = iob2_entities(units, head.outside_label, words)
    if head.note:
        answer["note"] = head.note
    return answer


def iob2_entities(
    units: Sequence[dict[str, Any]], outside: str | None, words: TokenWords
) -> list[dict[str, Any]]:
    """Labelled units (in text order, outside ones included) grouped into entity spans.

    IOB2 as ``seqeval`` reads it by default: ``B-X`` starts an ``X`` entity; ``I-X`` continues
    the entity just before it when that is an ``X``, else starts one; ``outside`` ends one.
    Each entity: ``label`` X, ``start``/``end`` from its first to its last unit, ``text`` the
    client's characters between, ``score`` the mean of its units' scores (Hugging Face's
    ``aggregation_strategy="simple"`` grouping score).
    """
    entities: list[dict[str, Any]] = []
    scores: list[list[float]] = []
    open_entity = False
    for unit in units:
        label: str = unit["label"]
        if label == outside:
            open_entity = False
            continue
        prefix, kind = label[:2], label[2:]
        if prefix == "I-" and open_entity and entities[-1]["label"] == kind:
            entities[-1]["end"] = unit["end"]
            scores[-1].append(unit["score"])
            continue
        entities.append({"label": kind, "start": unit["start"], "end": unit["end"]})
        scores.append([unit["score"]])
        open_entity = True
    return [
        {
            "text": words.text[entity["start"] : entity["end"]],
            "start": entity["start"],
            "end": entity["end"],
            "label": entity["label"],
            "score": sum(found) / len(found),
        }
        for entity, found in zip(entities, scores, strict=True)
    ]
