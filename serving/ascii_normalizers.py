"""A served tokenizer's twin for ASCII text: the same file without the normalizer steps that
leave ASCII text as it is.

Why: on a qa request's two short ASCII texts, the file's ``NFD`` and ``StripAccents`` steps
were ~4% of the request's instructions (loadtests/README.md, round 20): each rebuilds the
text and its alignment map character by character and changes nothing.

Why the twin's encodings are the file's (ids, tokens, character offsets, word ids): it is
the file itself (model, pre-tokenizer, added tokens with their ``normalized`` flags,
post-processor, decoder) with only these steps left out, and each leaves an ASCII text, and
so its alignments, unchanged:

- ``NFD``, ``NFC``, ``NFKD``, ``NFKC``: every ASCII character is its own decomposition and
  composition in the four normalization forms (Unicode Standard Annex #15; no ASCII
  character has a decomposition mapping in UnicodeData.txt).
- ``StripAccents``: removes the combining marks (general category Mn); ASCII has none.
- ``BertNormalizer``'s ``handle_chinese_chars`` (spaces around CJK ideographs, none in
  ASCII) and its accent stripping (``strip_accents``, or ``lowercase`` when that is unset:
  ``NFD`` and then ``StripAccents``). Its ``clean_text`` and ``lowercase`` change ASCII
  (control characters, tabs, capitals) and stay.

Every other normalizer (``Lowercase``, ``Strip``, ``Replace``, ``Prepend``, SentencePiece's
``Precompiled``...) is kept as it is, and so is every step after one that may write a
character outside ASCII (a ``Replace`` writing "é", a ``Prepend`` of "▁", ``Precompiled``):
from there the text may not be ASCII any more; and every step after a ``Replace`` of a regex
(one that matches the empty string leaves alignments the later steps panic on: the twin
would answer where the file fails). tests/unit/serving/test_ascii_normalizers.py
checks the twin's encodings against the file's, text for text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tokenizers import Encoding, Tokenizer

# Key of the twin in a served tokenizer's instance dict: _PENDING from its load (a version's
# tokenizer is read once and not modified afterwards) to its first ASCII text, then the twin
# or None. A tokenizer without the key (one being built, as in training) has no twin.
TWIN = "ascii_twin"
_PENDING = "pending"
_UNCHANGED_ASCII = frozenset({"NFD", "NFC", "NFKD", "NFKC", "StripAccents"})
# Steps whose output is ASCII whenever their input is: the steps after them still read ASCII.
_KEEP_ASCII = frozenset({"Lowercase", "Strip", "BertNormalizer", *_UNCHANGED_ASCII})


def ascii_normalizer(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """A normalizer's JSON (``tokenizer.json``'s ``"normalizer"``) without the steps that
    leave ASCII text unchanged (see the module docstring): ``spec`` itself when none can be
    left out, None when no step is left.

    A step is left out only while every step before it keeps an ASCII text ASCII: after a
    ``Replace`` writing "é", a ``Prepend`` of "▁" (SentencePiece's) or a ``Precompiled``
    map, ``NFD`` and ``StripAccents`` may have work to do, and are kept.
    """
    if spec is None:
        return None
    steps = _steps(spec)
    kept: list[dict[str, Any]] = []
    ascii_text = True
    for step in steps:
        if ascii_text and step.get("type") in _UNCHANGED_ASCII:
            continue
        if ascii_text and step.get("type") == "BertNormalizer":
            step = {**step, "handle_chinese_chars": False, "strip_accents": False}
        kept.append(step)
        ascii_text = ascii_text and _keeps_ascii(step)
    if kept == steps:
        return spec
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else {"type": "Sequence", "normalizers": kept}


def _ascii_match(token: dict[str, Any]) -> bool:
    # An added token of tokenizer.json's "added_tokens" that the twin finds as the file does.
    return not token.get("normalized") or str(token.get("content", "")).isascii()


def _steps(spec: dict[str, Any]) -> list[dict[str, Any]]:
    # The steps in the order they are applied, nested sequences flattened.
    if spec.get("type") == "Sequence":
        return [step for inner in spec.get("normalizers", []) for step in _steps(inner)]
    return [spec]


def _keeps_ascii(step: dict[str, Any]) -> bool:
    if step.get("type") in _KEEP_ASCII:
        return True
    if step.get("type") == "Replace":
        # A regex (or an empty string) may match the empty string: text inserted there gets
        # zero-width alignments, and tokenizers 0.23's NFD/NFC/StripAccents/Lowercase after
        # it panic on them ("(?=[A-Z])" -> " " then NFC, on "Mary"): the file's steps stay.
        pattern = step.get("pattern") or {}
        plain = isinstance(pattern.get("String"), str) and pattern["String"] != ""
        return plain and str(step.get("content", "")).isascii()
    if step.get("type") == "Prepend":
        return str(step.get("prepend", "")).isascii()
    return False  # Precompiled, ByteLevel, a kind added later: may write any character


def allow_ascii_twin(tokenizer: Tokenizer) -> None:
    """Let :func:`encode_plain` encode ASCII texts with ``tokenizer``'s ASCII twin. Call it
    once the tokenizer is set up for serving: the twin is built from the file as it is at the
    first ASCII text (a version's load reads the spec's example: before its first request),
    not at load, which a tokenizer read only for its vocabulary size or its checks skips."""
    tokenizer.__dict__[TWIN] = _PENDING


def ascii_twin(tokenizer: Tokenizer) -> Tokenizer | None:
    """The twin ASCII texts of ``tokenizer`` are encoded with, built on the first call; None
    when it has none: not allowed one (:func:`allow_ascii_twin`), no step to leave out, or an
    added token matched in the normalized text (``normalized``) spelt outside ASCII
    (``tokenizers`` normalizes its spelling with the file's normalizer to find it: "Caféx"
    is found in "cafex" under NFD + Lowercase + StripAccents; the twin would look for
    "caféx")."""
    twin = tokenizer.__dict__.get(TWIN)
    if twin is _PENDING:  # two threads may both build it: the same twin, one kept
        twin = tokenizer.__dict__[TWIN] = _build_twin(tokenizer)
    return twin if isinstance(twin, Tokenizer) else None


def _build_twin(tokenizer: Tokenizer) -> Tokenizer | None:
    normalizer = tokenizer.normalizer
    if normalizer is None:
        return None
    spec = json.loads(normalizer.__getstate__())
    kept = ascii_normalizer(spec)
    if kept == spec:
        return None
    data = json.loads(tokenizer.to_str())
    if not all(_ascii_match(token) for token in data.get("added_tokens") or []):
        return None
    data["normalizer"] = kept
    try:
        twin = Tokenizer.from_str(json.dumps(data))
    except Exception:  # tokenizers raises a bare Exception; without a twin: the file's speed
        return None
    # The file's own model object (shared, not copied: its vocabulary was the twin's memory,
    # ~7 MB per BERT tokenizer in each worker; the same model, so the same ids).
    twin.model = tokenizer.model
    return twin


def encode_plain(tokenizer: Tokenizer, text: str) -> Encoding:
    """``tokenizer.encode(text, add_special_tokens=False)``, by its ASCII twin when ``text``
    is ASCII (``str.isascii`` reads a flag of the string: no scan)."""
    if text.isascii():
        tokenizer = ascii_twin(tokenizer) or tokenizer
    return tokenizer.encode(text, add_special_tokens=False)


def encode_plain_fast(tokenizer: Tokenizer, texts: Sequence[str]) -> list[Encoding]:
    """``tokenizer.encode_batch_fast(texts, add_special_tokens=False)`` (no character
    offsets), by the ASCII twin when every text is ASCII."""
    if all(text.isascii() for text in texts):
        tokenizer = ascii_twin(tokenizer) or tokenizer
    return list(tokenizer.encode_batch_fast(list(texts), add_special_tokens=False))
