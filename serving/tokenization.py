"""Turn texts into padded id matrices with a saved ``tokenizers`` tokenizer.

Training and the gateway both call :func:`encode_texts`, so the ids a model was trained on
are, by construction, the ids the served model receives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from serving.ascii_normalizers import allow_ascii_twin, encode_plain, encode_plain_fast
from serving.contract import PAD_ID

Truncation = Literal["left", "right"]


class TokenizerPanicError(Exception):
    """A tokenizer's Rust code panicked (a file the library reads but cannot apply)."""


@contextmanager
def panics_as_errors() -> Iterator[None]:
    """Raise :class:`TokenizerPanicError` for a ``tokenizers`` panic inside the block.

    A panic surfaces as ``pyo3_runtime.PanicException``, a ``BaseException`` that no package
    exports, so ``except Exception`` misses it: a post-processor template naming a special
    token the file does not define panics on every encode, and killed the thread that met it
    (the gateway's version poller). Found by its name; anything else passes through.
    """
    try:
        yield
    except BaseException as error:
        if (panic := panic_error(error)) is None:
            raise
        raise panic from error


def panic_error(error: BaseException) -> TokenizerPanicError | None:
    """``error`` as a :class:`TokenizerPanicError` if it is a ``tokenizers`` panic, else
    None: :func:`panics_as_errors` without a context manager, for a path run per request."""
    if type(error).__name__ != "PanicException":
        return None
    return TokenizerPanicError(str(error))


def vocab_bound(tokenizer: Tokenizer, *, special_tokens: bool = True) -> int:
    """One past the largest id ``tokenizer`` can produce (added tokens included, and with
    ``special_tokens`` the ids its post-processor adds: :func:`special_ids`).

    What an embedding of ``vocab_size`` rows must cover. ``get_vocab_size`` counts the ids,
    which is less when they have gaps (a token added at id 1000 to a 30-word vocabulary).
    """
    ids = list(tokenizer.get_vocab(with_added_tokens=True).values())
    if special_tokens:
        ids += special_ids(tokenizer)
    return max(ids, default=-1) + 1


def special_ids(tokenizer: Tokenizer) -> list[int]:
    """The ids the post-processor adds around a text (``[CLS]``/``[SEP]``), as its template
    gives them: they need not be in the vocabulary (``("[CLS]", 101)`` copied from BERT into a
    50-word tokenizer was sent as 101). Empty when it adds none, or panics (a template naming
    a token the file lacks: encoding the example reports that)."""
    try:
        with panics_as_errors():
            empty = tokenizer.encode("", add_special_tokens=False)
            return list(tokenizer.post_process(empty, None, True).ids)
    except TokenizerPanicError:
        return []


def added_token_clash(tokenizer: Tokenizer) -> tuple[str, str] | None:
    """Two added tokens matched in the normalized text (``normalized``) that read the same
    once normalized, under other ids ("AcmeCorp" and "acmecorp" under Lowercase), or None.

    ``tokenizers`` keeps one of them per loaded tokenizer, picked by its hash map's order,
    which changes from one load to the next: a text spelling them got either id, from one
    worker (or training run) to the next."""
    normalizer = tokenizer.normalizer
    seen: dict[str, tuple[str, int]] = {}
    for token_id, token in sorted(tokenizer.get_added_tokens_decoder().items()):
        if not token.normalized:
            continue
        form = normalizer.normalize_str(token.content) if normalizer else token.content
        first = seen.setdefault(form, (token.content, token_id))
        if first[1] != token_id:
            return first[0], token.content
    return None


def load_tokenizer(path: Path) -> Tokenizer:
    """Load a tokenizer saved as ``tokenizer.json``, with padding, truncation and BPE dropout
    switched off."""
    return _for_serving(Tokenizer.from_file(str(path)))


def parse_tokenizer(text: str) -> Tokenizer:
    """:func:`load_tokenizer` from the file's text (bytes the caller read once, and hashed)."""
    return _for_serving(Tokenizer.from_str(text))


def _for_serving(tokenizer: Tokenizer) -> Tokenizer:
    # Lengths are applied per input by encode_texts, not by the file's own settings.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    # A BPE model trained with dropout (subword regularisation) keeps it in the file, and
    # `tokenizers` applies it on every encode: one text would get other ids on each request.
    if getattr(tokenizer.model, "dropout", None):
        tokenizer.model.dropout = 0.0
    allow_ascii_twin(tokenizer)  # after the settings above: the twin copies them
    return tokenizer


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file (used to pin a tokenizer to a model version)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def join_posts(posts: Sequence[str], separator: str, max_chars: int | None = None) -> str:
    """One profile text from a person's posts: joined by the separator token, cut at max_chars.

    The cut only saves tokenising time on very long profiles; training and the gateway make
    it alike (``max_chars`` comes from preprocessing.json), so both see the same ids.
    """
    return f" {separator} ".join(posts)[:max_chars]


SMALL_BATCH = 8  # texts encoded one by one up to this many (see encode_texts)


def encode_texts(
    tokenizer: Tokenizer,
    texts: Sequence[str],
    max_length: int,
    truncation: Truncation = "right",
    min_length: int = 1,
    *,
    add_special_tokens: bool = True,
    pad_id: int = PAD_ID,
) -> npt.NDArray[np.int32]:
    """Encode texts to an int32 ``[len(texts), longest]`` matrix padded with PAD_ID.

    ``truncation="left"`` keeps the end of a long text (the part of a story nearest the
    question); ``"right"`` keeps its beginning. Special tokens of the tokenizer's
    post-processor (``[CLS]``/``[SEP]`` of a BERT tokenizer) are added after truncation, so
    they are never cut off and a row is at most ``max_length`` long; with
    ``add_special_tokens=False`` none are added.
    """
    return id_matrix(
        tokenizer,
        plain_encodings(tokenizer, texts, offsets=False),
        max_length,
        truncation,
        min_length,
        add_special_tokens=add_special_tokens,
        pad_id=pad_id,
    )


def plain_encodings(
    tokenizer: Tokenizer, texts: Sequence[str], *, offsets: bool = True
) -> list[Encoding]:
    """Each text's whole encoding without special tokens (what :func:`id_matrix` cuts).

    ``offsets=False``: the same ids, but no token strings and every character span
    ``(0, 0)`` (``Tokenizer.encode_batch_fast``, which skips tracking them: about half the
    CPU of ``encode`` for a profile's 14 kB of posts); for callers that read only ids.
    """
    if not offsets:
        return encode_plain_fast(tokenizer, texts)
    # encode_batch hands the texts to the tokenizer's thread pool: worth it for many texts,
    # pure overhead (a thread hand-off and wake-ups) for the few of a gateway request.
    if len(texts) > SMALL_BATCH:
        return list(tokenizer.encode_batch(list(texts), add_special_tokens=False))
    return [encode_plain(tokenizer, text) for text in texts]


def cut_to_fit(
    tokenizer: Tokenizer,
    encoding: Encoding,
    max_length: int,
    truncation: Truncation = "right",
    add_special_tokens: bool = True,
) -> Encoding:
    """Truncate ``encoding`` **in place** so that with its special tokens it has at most
    ``max_length`` ids (the one cut rule of training, the gateway and the evidence segments);
    returns it."""
    budget = max_length
    if add_special_tokens:
        budget -= tokenizer.num_special_tokens_to_add(False)
    if len(encoding) > budget:  # len(): the token count, without building the ids list
        encoding.truncate(budget, direction=truncation)
    return encoding


def adds_nothing(tokenizer: Tokenizer) -> bool:
    """Whether ``tokenizer.post_process`` of one encoding gives back its ids unchanged: no
    post-processor (``tokenizers`` then keeps a lone encoding as it is), no truncation and no
    padding of its own (:func:`load_tokenizer` turns both off). Post-processing copies the
    encoding (its overflowing parts too) to return the same ids."""
    return (
        tokenizer.post_processor is None
        and tokenizer.truncation is None
        and tokenizer.padding is None
    )


def id_matrix(
    tokenizer: Tokenizer,
    encodings: Sequence[Encoding],
    max_length: int,
    truncation: Truncation = "right",
    min_length: int = 1,
    *,
    add_special_tokens: bool = True,
    pad_id: int = PAD_ID,
) -> npt.NDArray[np.int32]:
    """:func:`encode_texts` from :func:`plain_encodings`: the same matrix, the same cut.

    Each encoding is truncated **in place** to the budget left by the special tokens, so
    afterwards it is the text's encoding as the model sees it (without special tokens).
    """
    cut = [
        cut_to_fit(tokenizer, encoding, max_length, truncation, add_special_tokens)
        for encoding in encodings
    ]
    if adds_nothing(tokenizer):  # the qa and profile tokenizers: the cut ids are the rows
        rows = [encoding.ids for encoding in cut]
    else:
        rows = [tokenizer.post_process(encoding, None, add_special_tokens).ids for encoding in cut]
    width = max([min_length, *(len(row) for row in rows)])
    matrix = np.full((len(rows), width), pad_id, dtype=np.int32)
    for index, row in enumerate(rows):
        matrix[index, : len(row)] = row
    return matrix
