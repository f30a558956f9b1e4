"""Checks of a version's asset files, before its runtime unit is built from them.

Each raises :class:`UnfitVersionError` with a short reason safe for clients (the details go
to the log): a file too large to read, a tokenizer other than the one exported with the
model. What the tokenizers must do for the spec's inputs is one check shared with the export:
:func:`serving.spec_tokenizers.unservable_reason`.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ValidationError

from serving import contract
from serving.contract import TRANSIENT_ERRNOS
from serving.spec import (
    BinaryHead,
    CategoricalHead,
    MultilabelHead,
    RegressionHead,
    ScoreHead,
    SegmentRule,
    SegmentWeightsHead,
    ServingSpec,
    TextInput,
    TextsInput,
    TokenLabelsHead,
)

LOGGER = logging.getLogger("serving.gateway.runtime")
# Largest spec, model card or legacy file (JSON metadata: kilobytes when exported) and
# tokenizer (megabytes) read. Each worker reads them whole at each check, so a runaway file
# (a labels list of gigabytes) would take every worker's memory, again at each restart.
MAX_METADATA_BYTES = 16 * 2**20
MAX_TOKENIZER_BYTES = 256 * 2**20
INPUT_MODELS: tuple[type[BaseModel], ...] = (TextInput, TextsInput)
HEAD_MODELS: tuple[type[BaseModel], ...] = (
    CategoricalHead,
    BinaryHead,
    MultilabelHead,
    RegressionHead,
    ScoreHead,
    SegmentWeightsHead,
    TokenLabelsHead,
)
# pydantic puts a discriminated union's tag in an error's path (inputs.0.text.max_tokens).
SPEC_UNION_TAGS: dict[str, type[BaseModel]] = {
    model.model_fields["kind"].default: model for model in (*INPUT_MODELS, *HEAD_MODELS)
}


class AssetsUnreadableNowError(Exception):
    """A version's file could not be read for a reason of the process or the machine
    (:data:`serving.contract.TRANSIENT_ERRNOS`), not of the file: its check is repeated later.

    Found by the adversarial repo pass 6: with the worker out of file descriptors, a new
    version was refused as having an "invalid serving_spec.json" (or a tokenizer that
    "cannot be loaded"), and the verdict lasts until the version's files change, so it
    stayed refused once descriptors were free again. Not an ``OSError``: the readers'
    ``except OSError`` refuse the version for what is wrong with its files.
    """


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


def require_regular(path: Path) -> None:
    """Raise UnfitVersionError when ``path`` is there but is no regular file (a folder, a
    FIFO or device, a dangling or looping symlink); nothing when it is absent or regular.

    Found by the adversarial repo pass 5: an asset that is optional (``model_card.json``)
    or has a fallback (``serving_spec.json``: the legacy files) was taken as absent by
    ``is_file()``, so a card that was a folder or a FIFO turned the tokenizer hash check off,
    and a spec that was one served the version from its legacy files.
    """
    if os.path.lexists(path) and not path.is_file():
        raise UnfitVersionError(f"{path.name} is not a regular file")


def read_asset(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, checked and read through one descriptor.

    Raises UnfitVersionError for no regular file (opened non-blocking: a FIFO swapped in
    after an ``is_file()`` never blocks the worker) or one larger than ``limit`` bytes (never
    read whole), :class:`AssetsUnreadableNowError` when the process cannot open or read a
    file now (no descriptor or memory left), OSError when it cannot be opened or read. What
    is hashed, parsed and served is one reading of one file: found by the adversarial repo
    pass 5, a tokenizer replaced between its load and its hash was served while the hash of
    its successor was checked against ``model_card.json``.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise UnfitVersionError(f"{path.name} is not a regular file")
            too_large = UnfitVersionError(f"{path.name} is larger than {limit // 2**20} MiB")
            if status.st_size > limit:
                raise too_large
            with os.fdopen(descriptor, "rb", closefd=False) as file:
                data = file.read(limit + 1)
        finally:
            os.close(descriptor)
    except OSError as error:
        if error.errno in TRANSIENT_ERRNOS:
            raise AssetsUnreadableNowError(f"{path.name}: {error.strerror}") from error
        raise
    except MemoryError as error:  # a tokenizer read whole: the worker's memory, not the file
        raise AssetsUnreadableNowError(f"{path.name}: out of memory") from error
    if len(data) > limit:  # it grew while read
        raise too_large
    return data


def check_exported_hashes(
    folder: Path,
    model: str,
    version: int,
    hashes: Mapping[str, str],
    labels: Mapping[str, Sequence[str]] | None = None,
    wiring: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Raise UnfitVersionError unless each tokenizer is the file the version was exported with,
    and each labelled output (``labels``: output -> the spec's labels) has the labels it was
    exported with, in their order.

    ``model_card.json``'s ``tokenizer_sha256`` (written by ``export_for_serving``) names each
    file's sha256: another tokenizer of the same size passes every other check and turns the
    texts into other ids. Its ``labels`` name each output's labels in column order: another
    version's spec copied in (the same labels in another order: found by the adversarial repo
    pass 6) passes every other check and answers each column under another label. Labels
    renamed in the spec are not refused. ``wiring`` (:func:`serving.spec_outputs.spec_wiring`:
    each input field's tensor, each head field's output) must be the card's for every field
    the card names: a spec with two inputs' tensors swapped (found by the adversarial repo
    pass 7; both ``[-1, -1]`` int32, so every check passed) fed each text to the other's
    tensor and answered garbage as a 200. Not checked without a card, or for a file, output or
    field the card does not name (an older export's card names none).
    """
    path = folder / contract.MODEL_CARD_FILE
    require_regular(path)
    if not path.is_file():
        return
    try:
        card = json.loads(read_asset(path, MAX_METADATA_BYTES).decode("utf-8"))
    except (OSError, ValueError) as error:
        LOGGER.warning("%s v%d: cannot read %s: %r", model, version, path.name, error)
        raise UnfitVersionError(f"{contract.MODEL_CARD_FILE} cannot be read") from error
    recorded = _recorded_hashes(card)
    for name, digest in hashes.items():
        if recorded.get(name, digest) != digest:
            raise UnfitVersionError(
                f"tokenizer {name} is not the one exported with the model (its sha256 "
                f"differs from {contract.MODEL_CARD_FILE})"
            )
    exported = card.get("labels")
    exported = exported if isinstance(exported, dict) else {}  # an older export's: none
    for output, names in (labels or {}).items():
        known = exported.get(output)
        # Only the same labels in another order: labels renamed in the spec (a typo fixed,
        # a translation) are the spec's to choose; a count that differs fails the fit check.
        if (
            isinstance(known, list)
            and known != list(names)
            and sorted(map(str, known)) == sorted(names)
        ):
            raise UnfitVersionError(
                f"output {output}: the spec's labels are in another order than the model was "
                f"exported with ({contract.MODEL_CARD_FILE}): its columns would be answered "
                "under other labels"
            )
    for key, wired in (wiring or {}).items():
        known = card.get(key)
        known = known if isinstance(known, dict) else {}
        for field, tensor in wired.items():
            # Another field's exported tensor: a tensor the model may not have is the fit
            # check's to refuse, naming the signature's own (a typo, not a re-wiring).
            if known.get(field, tensor) != tensor and tensor in known.values():
                raise UnfitVersionError(
                    f"field {field} is wired to {tensor}, the model was exported with it wired "
                    f"to {known[field]} ({contract.MODEL_CARD_FILE} {key})"
                )


def _recorded_hashes(card: object) -> Mapping[str, object]:
    """The tokenizer digests ``card`` records (file -> sha256): none for a card without them.

    A card that is no JSON object, or whose ``tokenizer_sha256`` is no object, is refused
    (UnfitVersionError) as one that is no JSON at all is: found by the adversarial repo pass
    11, a card of ``[]`` or with ``"tokenizer_sha256": 5`` turned the check off and the
    version was routed with whatever tokenizer it held. A string is the first exports'
    record (the digest of ``tokenizer.json``, the only tokenizer then), checked as such.
    """
    if not isinstance(card, dict):
        raise UnfitVersionError(f"{contract.MODEL_CARD_FILE} is no JSON object")
    recorded = card.get("tokenizer_sha256")
    if recorded is None:  # an export that recorded none: not checked
        return {}
    if isinstance(recorded, str):
        return {contract.TOKENIZER_FILE: recorded}
    if not isinstance(recorded, dict):
        raise UnfitVersionError(
            f"{contract.MODEL_CARD_FILE}: tokenizer_sha256 is no object of tokenizer file -> "
            "sha256, as the export writes it"
        )
    return recorded


def spec_problems(error: ValidationError, *, most: int = 3) -> str:
    """Where an invalid ``serving_spec.json`` is wrong, short and safe for clients.

    Each of the first ``most`` errors as ``path: message`` (``inputs.0.max_tokns: unknown
    field (did you mean 'max_tokens'?)``): pydantic's messages name rules and at most a
    value of the spec itself (a wrong ``kind``), never a server path. A new user's misspelt
    field had been only "invalid serving_spec.json" in ``GET /v1/models`` and ``/readyz``,
    the details in the gateway's log alone.
    """
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:most]:
        # The union's tag (inputs.0.text.max_tokens) is pydantic's, not a key of the file.
        loc = [str(part) for part in item["loc"] if part not in SPEC_UNION_TAGS]
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = _unknown_field(item["loc"])
        parts.append(f"{'.'.join(loc) or 'spec'}: {message[:300]}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _unknown_field(loc: tuple[int | str, ...]) -> str:
    # A key of another kind (a categorical head's label_descriptions under a head whose kind
    # was changed to multilabel) is named as such: the closest name of this kind misled.
    key, tags = str(loc[-1]), [str(part) for part in loc if part in SPEC_UNION_TAGS]
    if tags:
        noun = "input" if "inputs" in loc else "head"
        family = INPUT_MODELS if noun == "input" else HEAD_MODELS
        owners = [
            tag
            for tag, model in SPEC_UNION_TAGS.items()
            if tag != tags[-1] and model in family and key in model.model_fields
        ]
        if owners:
            return f"unknown field for a {tags[-1]} {noun} (a field of {', '.join(owners)} {noun}s)"
    allowed = _allowed_fields(loc[:-1])
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of {allowed}"
    return f"unknown field ({hint})"


def _allowed_fields(parent: tuple[int | str, ...]) -> list[str]:
    # The object the unknown key sits in: the last union member or sub-model on its path.
    model: type[BaseModel] = ServingSpec
    for part in parent:
        if part in SPEC_UNION_TAGS:
            model = SPEC_UNION_TAGS[str(part)]
        elif part == "rule":
            model = SegmentRule
    return sorted(model.model_fields)
