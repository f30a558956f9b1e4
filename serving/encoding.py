"""Request instances -> id tensors, and a text's segments, by a version's serving spec.

Training (warmup requests, supervision of segment weights) and the gateway (every request)
call these same functions, so a served model sees exactly the ids it was trained on and
segment weights map back to the same pieces of text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from serving.spec import SegmentRule, ServingSpec, TextInput, TextsInput
from serving.tokenization import encode_texts, join_posts

Tensors = dict[str, npt.NDArray[np.int32]]
# A word needs a letter or a digit (any script): Python's Unicode "\w" without "_". The
# OpenAPI document gives the rule as "[\p{L}\p{N}]" (JSON Schema regexes are ECMA-262's,
# whose "\w" is ASCII only).
WORD_PATTERN = re.compile(r"[^\W_]")
_WINDOW = 64  # characters tokenised first: enough to find a token in almost every text


def has_words(tokenizer: Tokenizer, text: str) -> bool:
    """Whether ``text`` has a letter or digit from which the tokenizer makes a token.

    False for "", whitespace, zero-width, control and format characters, punctuation or
    symbols alone (emoji), and texts the tokenizer's normaliser empties. A text of unknown
    words is True: it becomes [UNK] ids, as in training. Cost: a regex search for the first
    letter or digit, then the tokenisation of a short window from there (of the rest of the
    text only when the window gives no token).
    """
    word = WORD_PATTERN.search(text)
    if word is None:
        return False
    start = word.start()
    if tokenizer.encode(text[start : start + _WINDOW], add_special_tokens=False).ids:
        return True
    return bool(tokenizer.encode(text[start:], add_special_tokens=False).ids)


def input_text(item: TextInput | TextsInput, value: Any) -> str:
    """The one text an input value becomes: a string as is, a list joined (and cut) as trained."""
    if item.kind == "texts":
        return join_posts(list(value), item.separator, item.max_joined_chars)
    return str(value)


def encode_instances(
    spec: ServingSpec,
    tokenizers: Mapping[str, Tokenizer],
    instances: Sequence[Mapping[str, Any]],
) -> Tensors:
    """Signature inputs for validated instances: int32 ``[len(instances), longest]`` each.

    ``tokenizers`` maps each tokenizer file name of the spec to its loaded tokenizer. Rows are
    padded with ``spec.pad_id`` to the batch's longest text (at least one column).
    """
    tensors: Tensors = {}
    for item in spec.inputs:
        texts = [input_text(item, instance[item.field]) for instance in instances]
        tensors[item.tensor] = encode_texts(
            tokenizers[item.tokenizer],
            texts,
            item.max_tokens,
            item.truncation,
            add_special_tokens=item.add_special_tokens,
            pad_id=spec.pad_id,
        )
    return tensors


def truncated_encoding(tokenizer: Tokenizer, text: str, item: TextInput | TextsInput) -> Encoding:
    """The text's encoding without special tokens, cut exactly as :func:`encode_texts` cuts it."""
    budget = item.max_tokens
    if item.add_special_tokens:
        budget -= tokenizer.num_special_tokens_to_add(False)
    encoding = tokenizer.encode(text, add_special_tokens=False)
    if len(encoding.ids) > budget:
        encoding.truncate(budget, direction=item.truncation)
    return encoding


def segment_texts(
    tokenizer: Tokenizer, text: str, item: TextInput | TextsInput, rule: SegmentRule
) -> list[str | None]:
    """The text of each segment slot (``rule.max_segments`` entries; None where no segment).

    Follows :class:`serving.spec.SegmentRule`: segments end at ``rule.separator_token`` or at
    the last kept token; slot 0 is the last segment when ``rule.order == "last_first"``.
    """
    encoding = truncated_encoding(tokenizer, text, item)
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for token, (begin, end) in zip(encoding.tokens, encoding.offsets, strict=True):
        start = begin if start is None else start
        if token == rule.separator_token:
            spans.append((start, end))
            start = None
    if start is not None:
        spans.append((start, encoding.offsets[-1][1]))
    if rule.order == "last_first":
        spans.reverse()
    slots: list[str | None] = [text[begin:end].strip() for begin, end in spans]
    slots = slots[: rule.max_segments]
    return slots + [None] * (rule.max_segments - len(slots))
