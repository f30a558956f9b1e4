"""Whether a spec's inputs can be answered with its tokenizers: one check, export and gateway.

``training.export.export_for_serving`` refuses a version for which :func:`unservable_reason`
gives a reason (``SpecMismatchError``), and the gateway does not route one
(``serving.gateway.runtime.load_runtime``), with the same reason: a version the exporter
accepted is never one the gateway leaves unrouted for its tokenizers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenizers import Tokenizer

from serving.contract import PAD_ID
from serving.encoding import input_text
from serving.spec import ServingSpec, TextInput, TextsInput
from serving.tokenization import (
    TokenizerPanicError,
    added_token_clash,
    panics_as_errors,
    vocab_bound,
)
from serving.words import has_words, word_kept_in

# Words and characters no small vocabulary holds (Latin, Cyrillic, CJK, symbols, a digit):
# a tokenizer must turn them into ids (its unknown token), not fail.
UNKNOWN_PROBE = "zqxjvw Жщюя 日本語 ☃ ½ 9"
WORDS_PROBE = "a b"  # two words for any tokenizer that splits at whitespace


def tokenizer_problem(file: str, tokenizer: Tokenizer, special_tokens: bool = False) -> str | None:
    """Why ``tokenizer`` cannot encode any text, or None.

    A ``WordLevel`` or ``WordPiece`` model without its unknown token in the vocabulary (or a
    ``Unigram`` without ``unk_id``) raises on a word it does not know instead of giving an
    id, so every request with such a word would fail; byte-level and ``BPE`` models that
    drop unknown characters pass. Two added tokens that read the same once normalized
    (:func:`serving.tokenization.added_token_clash`) give a text either id at random. With
    ``special_tokens`` (an input adds them), the post-processor must run: a template naming
    a special token the file does not define panics on every text
    (``pyo3_runtime.PanicException``, which escaped the export).
    """
    try:
        tokenizer.encode(UNKNOWN_PROBE, add_special_tokens=False)
    except Exception:  # tokenizers raises bare Exceptions
        return (
            f"tokenizer {file} fails on words outside its vocabulary (no unknown token such "
            "as [UNK] in it), so a request with one could not be encoded"
        )
    if (clash := added_token_clash(tokenizer)) is not None:
        return (
            f"tokenizer {file}'s added tokens {clash[0]!r} and {clash[1]!r} read the same once "
            "normalized: which of their ids a text gets changes from one load of the file to "
            "the next"
        )
    if not special_tokens:
        return None
    try:
        with panics_as_errors():
            tokenizer.encode(UNKNOWN_PROBE, add_special_tokens=True)
    except TokenizerPanicError:
        return (
            f"tokenizer {file}'s post-processor fails on every text (does its template name "
            "a special token the file does not define?), so no request could be encoded"
        )
    return None


def unservable_reason(
    spec: ServingSpec, tokenizers: Mapping[str, Tokenizer], *, owner_example: bool = True
) -> str | None:
    """Why the spec's inputs cannot be served with ``tokenizers`` (file name -> tokenizer), or
    None. ``owner_example`` False: the example is the gateway's own (a legacy version's,
    ``serving.gateway.legacy``), not the model's, so its words are not required known.

    Reasons, in this order: a tokenizer fails on unknown words, or its post-processor on any
    text (:func:`tokenizer_problem`);
    ``pad_id`` is not below an input's ``vocab_size``, or is an id texts are encoded to
    (:func:`pad_problem`); its tokenizer gives ids at or past that ``vocab_size``
    (:func:`serving.tokenization.vocab_bound`: added tokens, gaps and the ids a post-processor
    adds included), which the model's embedding has no row for; an input's ``max_tokens``
    leaves no id for text beside the special tokens its tokenizer adds (every request would be 422
    ``no_words``); the spec's example, which ``/docs`` offers and warmup sends, breaks the
    ``no_words`` rule requests meet (no word for its tokenizer, or none kept by the input's
    cut: ``serving.gateway.word_rules``), or its tokenizer knows none of its words (each is
    the unknown token: :func:`_knows_a_word`); a
    ``segment_weights`` head's ``separator_token`` is no token of its input's tokenizer, or
    is a special token of it (its segments end only at that token, which no text is then
    encoded to: :func:`serving.encoding.segment_texts`); a
    ``token_labels`` head of ``aggregation: "first"`` has a tokenizer that splits no words
    (:func:`_word_problem`).
    """
    for file in spec.tokenizer_files():
        special = any(item.add_special_tokens for item in spec.inputs if item.tokenizer == file)
        problem = tokenizer_problem(file, tokenizers[file], special)
        if problem is not None:
            return problem
    for item in spec.inputs:
        if spec.pad_id >= item.vocab_size:
            return (
                f"pad_id {spec.pad_id} is no id of input {item.field} (its vocab_size is "
                f"{item.vocab_size}): padded rows would fail in the model"
            )
        tokenizer = tokenizers[item.tokenizer]
        problem = pad_problem(item.tokenizer, tokenizer, spec.pad_id)
        if problem is not None and len(spec.tokenizer_files()) > 1:
            # Tokenizers of two families (a BERT's [PAD] 0, a RoBERTa's <pad> 1) cannot both
            # get their own pad id: one spec has one, which the remedy alone did not say.
            return (
                f"{problem} (one pad_id pads every input: each of {spec.tokenizer_files()} "
                "needs it as a padding token of its own)"
            )
        problem = (
            problem
            or left_zero_problem(item.tokenizer, tokenizer, item, spec.pad_id)
            or _vocab_problem(tokenizer, item)
            or _budget_problem(tokenizer, item)
            or _example_problem(tokenizer, item, spec.example[item.field], owner_example)
        )
        if problem is not None:
            return problem
    return _separator_problem(spec, tokenizers) or _word_problem(spec, tokenizers)


def _word_problem(spec: ServingSpec, tokenizers: Mapping[str, Tokenizer]) -> str | None:
    """A word is a run of one ``Encoding.word_ids`` value: a tokenizer without a pre-tokenizer
    (Llama's: spaces replaced by its normalizer) or with ``Metaspace(split=False)`` gives
    every token word 0, so each text was answered as one word with its first token's label.
    Judged on two words; a tokenizer giving them fewer than two tokens is not judged."""
    for head in spec.token_heads():
        if head.aggregation != "first":
            continue
        file = spec.input(head.input_field).tokenizer
        words = tokenizers[file].encode(WORDS_PROBE, add_special_tokens=False).word_ids
        found = [word for word in words if word is not None]
        if len(found) > 1 and len(set(found)) == 1:
            return (
                f"head {head.field}: tokenizer {file} splits no words (its pre-tokenizer gives "
                f"{WORDS_PROBE!r} one word), so aggregation 'first' would answer a whole text "
                "as one word; use aggregation 'none' (every token), or a pre_tokenizer that "
                "splits at spaces (Metaspace with split=True, Whitespace, ByteLevel)"
            )
    return None


def _separator_problem(spec: ServingSpec, tokenizers: Mapping[str, Tokenizer]) -> str | None:
    for head in spec.segment_heads():
        file = spec.input(head.input_field).tokenizer
        separator = head.rule.separator_token
        tokenizer = tokenizers[file]
        if tokenizer.token_to_id(separator) is None:
            return (
                f"head {head.field}: separator_token {separator!r} is no token of {file}, so "
                f"no text of {head.input_field} would be cut into segments"
            )
        if separator in _control_tokens(tokenizer):
            # Found by the adversarial repo pass 11: "[SEP]" or "[PAD]" passed the check above,
            # but a text never holds a special token (one spelt in it is read as plain text:
            # serving.literals), so every text was one segment and the evidence its whole text.
            return (
                f"head {head.field}: separator_token {separator!r} is a special token of "
                f"{file}, which no text of {head.input_field} is encoded to (one spelt in a "
                "text is read as plain text), so no text would be cut into segments"
            )
    return None


def _control_tokens(tokenizer: Tokenizer) -> set[str]:
    """The special tokens texts are never encoded to: every one but the unknown token."""
    unknown = _unknown_id(tokenizer)
    return {
        token.content
        for index, token in tokenizer.get_added_tokens_decoder().items()
        if token.special and index != unknown
    }


def _vocab_problem(tokenizer: Tokenizer, item: TextInput | TextsInput) -> str | None:
    bound = vocab_bound(tokenizer, special_tokens=item.add_special_tokens)
    if bound <= item.vocab_size:
        return None
    return (
        f"tokenizer {item.tokenizer} gives ids up to {bound - 1}, beyond the spec's "
        f"vocab_size {item.vocab_size} (input {item.field})"
    )


def pad_problem(file: str, tokenizer: Tokenizer, pad_id: int) -> str | None:
    """Why ``pad_id`` cannot pad rows of ``tokenizer``'s ids, or None: it is an id texts are
    encoded to, so the model masks those tokens as padding, and a text of only them (unknown
    words, when a trainer put ``[UNK]`` first at id 0) is a row of padding alone, on which a
    masked mean divides 0 by 0 (NaN: every such request failed, 502).

    Found by encoding words outside any small vocabulary (:data:`UNKNOWN_PROBE`: the unknown
    token's id) and the pad id's own token when it is no special token (a word such as
    ``the``).
    """
    what = _text_id(tokenizer, pad_id)
    if what is None:
        return None
    return (
        f"pad_id {pad_id} is {what} in {file}: the model would mask it as padding, and a text "
        "of only such tokens would be all padding; give the tokenizer a padding token of its "
        "own (e.g. special_tokens=['[PAD]', '[UNK]'] when training it) and pad_id its id"
    )


def _text_id(tokenizer: Tokenizer, token_id: int) -> str | None:
    """What makes ``token_id`` an id texts are encoded to (unknown words', a word's), or None."""
    token = tokenizer.id_to_token(token_id)
    if token_id in set(tokenizer.encode(UNKNOWN_PROBE, add_special_tokens=False).ids):
        return f"the id of {token!r}, which unknown words get"
    if token is not None and _is_word(tokenizer, token, token_id):
        return f"the id of the word {token!r}"
    return None


def left_zero_problem(file: str, tokenizer: Tokenizer, item: TextInput | TextsInput,
                      pad_id: int) -> str | None:  # fmt: skip
    """Why an input of ``padding: left`` cannot have ``pad_id`` with ``tokenizer``, or None.

    The exported signature takes a row's trailing ids 0 for padding too (the local model
    server's batching pads with 0, after the gateway's ``pad_id``:
    ``training.saved_model._padding_first``), so with a ``pad_id`` other than 0 a text
    ending in an id 0 texts are encoded to (a SentencePiece ``<unk>`` 0) lost it; the model
    was trained on it.
    """
    if item.padding != "left" or pad_id == PAD_ID:
        return None
    what = _text_id(tokenizer, PAD_ID)
    if what is None:
        return None
    return (
        f"input {item.field} has padding 'left' and pad_id {pad_id}: its exported signature "
        f"takes a row's trailing ids {PAD_ID} for the model server's padding, and {PAD_ID} is "
        f"{what} in {file}, so a text ending in it would lose it; use pad_id {PAD_ID} with a "
        f"padding token of id {PAD_ID}, or a tokenizer whose id {PAD_ID} is a special token"
    )


def _is_word(tokenizer: Tokenizer, token: str, token_id: int) -> bool:
    special = {item.content for item in tokenizer.get_added_tokens_decoder().values()}
    if token in special or not any(char.isalnum() for char in token):
        return False
    return tokenizer.encode(token, add_special_tokens=False).ids == [token_id]


def _unknown_id(tokenizer: Tokenizer) -> int | None:
    """The id a word-level, WordPiece or BPE model gives unknown words (its ``unk_token``'s), a
    Unigram model's ``unk_id``; None for a model without one (byte-level BPE knows every byte)."""
    model = tokenizer.model
    token = getattr(model, "unk_token", None)
    if isinstance(token, str):
        return tokenizer.token_to_id(token)
    unknown = getattr(model, "unk_id", None)
    return unknown if isinstance(unknown, int) else None


def _knows_a_word(tokenizer: Tokenizer, text: str, unknown: int) -> bool:
    """Whether some token of ``text`` that covers a letter or digit is not ``unknown``."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    return any(
        token != unknown and any(char.isalnum() for char in text[start:end])
        for token, (start, end) in zip(encoding.ids, encoding.offsets, strict=True)
    )


def _budget_problem(tokenizer: Tokenizer, item: TextInput | TextsInput) -> str | None:
    special = tokenizer.num_special_tokens_to_add(False) if item.add_special_tokens else 0
    if item.max_tokens > special:
        return None
    return (
        f"input {item.field}: max_tokens {item.max_tokens} leaves no token for text beside "
        f"the {special} special tokens its tokenizer adds"
    )


def _example_problem(
    tokenizer: Tokenizer, item: TextInput | TextsInput, value: Any, owner_example: bool
) -> str | None:
    texts = [value] if isinstance(value, str) else list(value)
    if not all(has_words(tokenizer, text) for text in texts):
        return f"the spec's example {item.field} has no word for its tokenizer"
    unknown = _unknown_id(tokenizer) if owner_example else None
    if unknown is not None and not any(_knows_a_word(tokenizer, text, unknown) for text in texts):
        # Found by the adversarial repo pass 11: a tokenizer fitted on no text (a vocabulary of
        # its special tokens alone) or with max_input_chars_per_word 0 turns every word into
        # [UNK], so every request got the one answer of a row of [UNK]s, as a 200.
        token = tokenizer.id_to_token(unknown)
        return (
            f"tokenizer {item.tokenizer} knows no word of the spec's example {item.field}: "
            f"every word becomes its unknown token {token!r}, as would every text's (was the "
            "tokenizer fitted on the training texts?)"
        )
    # The input's text as the model gets it (a list joined and cut at max_joined_chars), then
    # its cut to max_tokens.
    joined = input_text(item, value)
    kept = has_words(tokenizer, joined) and word_kept_in(tokenizer, joined, item)
    if kept:
        return None
    cut = f"max_tokens {item.max_tokens}"
    if isinstance(item, TextsInput) and item.max_joined_chars is not None:
        cut += f", max_joined_chars {item.max_joined_chars}"
    return f"the spec's example {item.field} has no word within what the model reads ({cut})"
