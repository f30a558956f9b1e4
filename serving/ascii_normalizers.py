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
``Precompiled``...) is kept as it is. tests/unit/serving/test_ascii_normalizers.py checks the
twin's encodings against the file's, text for text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tokenizers import Encoding, Tokenizer

# Key of the twin in the served tokenizer's instance dict (set at load, never changed: a
# version's tokenizer is read once and not modified afterwards).
TWIN = "ascii_twin"
_UNCHANGED_ASCII = frozenset({"NFD", "NFC", "NFKD", "NFKC", "StripAccents"})


def ascii_normalizer(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """A normalizer's JSON (``tokenizer.json``'s ``"normalizer"``) without the steps that
    leave ASCII text unchanged (see the module docstring); None when none is left."""
    if spec is None or spec.get("type") in _UNCHANGED_ASCII:
        return None
    if spec.get("type") == "Sequence":
        steps = [ascii_normalizer(step) for step in spec.get("normalizers", [])]
        kept = [step for step in steps if step is not None]
        return {**spec, "normalizers": kept} if kept else None
    if spec.get("type") == "BertNormalizer":
        return {**spec, "handle_chinese_chars": False, "strip_accents": False}
    return spec


def add_ascii_twin(tokenizer: Tokenizer) -> None:
    """Give ``tokenizer`` its ASCII twin (:func:`encode_plain` uses it) when its normalizer
    has a step the twin can leave out. Call it once the tokenizer is set up for serving: the
    twin is built from its current file."""
    normalizer = tokenizer.normalizer
    if normalizer is None:
        return
    spec = json.loads(normalizer.__getstate__())
    kept = ascii_normalizer(spec)
    if kept == spec:
        return
    data = json.loads(tokenizer.to_str())
    data["normalizer"] = kept
    try:
        twin = Tokenizer.from_str(json.dumps(data))
    except Exception:  # tokenizers raises a bare Exception; without a twin: the file's speed
        return
    # The file's own model object (shared, not copied: its vocabulary was the twin's memory,
    # ~7 MB per BERT tokenizer in each worker; the same model, so the same ids).
    twin.model = tokenizer.model
    tokenizer.__dict__[TWIN] = twin


def encode_plain(tokenizer: Tokenizer, text: str) -> Encoding:
    """``tokenizer.encode(text, add_special_tokens=False)``, by its ASCII twin when ``text``
    is ASCII (``str.isascii`` reads a flag of the string: no scan)."""
    if text.isascii():
        tokenizer = tokenizer.__dict__.get(TWIN, tokenizer)
    return tokenizer.encode(text, add_special_tokens=False)


def encode_plain_fast(tokenizer: Tokenizer, texts: Sequence[str]) -> list[Encoding]:
    """``tokenizer.encode_batch_fast(texts, add_special_tokens=False)`` (no character
    offsets), by the ASCII twin when every text is ASCII."""
    if all(text.isascii() for text in texts):
        tokenizer = tokenizer.__dict__.get(TWIN, tokenizer)
    return list(tokenizer.encode_batch_fast(list(texts), add_special_tokens=False))
