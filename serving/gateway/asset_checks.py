"""Checks of a version's asset files, before its runtime unit is built from them.

Each raises :class:`UnfitVersionError` with a short reason safe for clients (the details go
to the log): a file too large to read, a tokenizer whose ids pass the spec's ``vocab_size``
or that fails on the spec's example, a tokenizer other than the one exported with the model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from tokenizers import Tokenizer

from serving import contract
from serving.encoding import has_words
from serving.spec import ServingSpec, TextInput, TextsInput
from serving.tokenization import TokenizerPanicError, panics_as_errors, vocab_bound

LOGGER = logging.getLogger("serving.gateway.runtime")
# Largest spec, model card or legacy file (JSON metadata: kilobytes when exported) and
# tokenizer (megabytes) read. Each worker reads them whole at each check, so a runaway file
# (a labels list of gigabytes) would take every worker's memory, again at each restart.
MAX_METADATA_BYTES = 16 * 2**20
MAX_TOKENIZER_BYTES = 256 * 2**20


class UnfitVersionError(Exception):
    """A version the gateway must not route to; ``reason`` is short and safe for clients."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_size(path: Path, limit: int) -> None:
    """Raise UnfitVersionError for a file larger than ``limit`` bytes (never read then)."""
    try:
        size = path.stat().st_size
    except OSError:
        return  # reading it says why
    if size > limit:
        raise UnfitVersionError(f"{path.name} is larger than {limit // 2**20} MiB")


def check_tokenizer(spec: ServingSpec, item: TextInput | TextsInput, tokenizer: Tokenizer) -> None:
    """Raise UnfitVersionError unless the input's ids fit its ``vocab_size`` and its example
    has a word for the tokenizer (the no_words rule requests meet; /docs offers it)."""
    bound = vocab_bound(tokenizer, special_tokens=item.add_special_tokens)
    if bound > item.vocab_size:
        raise UnfitVersionError(
            f"tokenizer {item.tokenizer} gives ids up to {bound - 1}, beyond the spec's "
            f"vocab_size {item.vocab_size} (input {item.field})"
        )
    value = spec.example[item.field]
    try:
        with panics_as_errors():
            found = all(
                has_words(tokenizer, text)
                for text in ([value] if isinstance(value, str) else value)
            )
    except TokenizerPanicError as error:
        LOGGER.warning("tokenizer %s panicked on the example: %s", item.tokenizer, error)
        raise UnfitVersionError(
            f"tokenizer {item.tokenizer} fails on the spec's example (the library panicked)"
        ) from error
    if not found:
        raise UnfitVersionError(f"the spec's example {item.field} has no word for its tokenizer")


def check_exported_hashes(
    folder: Path, model: str, version: int, hashes: Mapping[str, str]
) -> None:
    """Raise UnfitVersionError unless each tokenizer is the file the version was exported with.

    ``model_card.json``'s ``tokenizer_sha256`` (written by ``export_for_serving``) names each
    file's sha256: another tokenizer of the same size passes every other check and turns the
    texts into other ids. Not checked without a card, or for a file the card does not name.
    """
    path = folder / contract.MODEL_CARD_FILE
    if not path.is_file():
        return
    check_size(path, MAX_METADATA_BYTES)
    try:
        card = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        LOGGER.warning("%s v%d: cannot read %s: %r", model, version, path.name, error)
        raise UnfitVersionError(f"{contract.MODEL_CARD_FILE} cannot be read") from error
    recorded = card.get("tokenizer_sha256") if isinstance(card, dict) else None
    if not isinstance(recorded, dict):
        return
    for name, digest in hashes.items():
        if recorded.get(name, digest) != digest:
            raise UnfitVersionError(
                f"tokenizer {name} is not the one exported with the model (its sha256 "
                f"differs from {contract.MODEL_CARD_FILE})"
            )
