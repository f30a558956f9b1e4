"""A version's serving spec as the gateway reads it: its ``serving_spec.json``, or one made
from the first exports' legacy files (:mod:`serving.gateway.legacy`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import ValidationError

from serving import contract
from serving.gateway.asset_checks import (
    MAX_METADATA_BYTES,
    MAX_TOKENIZER_BYTES,
    UnfitVersionError,
    read_asset,
    require_regular,
    spec_problems,
)
from serving.gateway.legacy import LegacyError, legacy_spec
from serving.spec import SPEC_FILE, ServingSpec
from serving.tokenization import parse_tokenizer, vocab_bound

# The runtime's logger: these lines were written from serving.gateway.runtime, and operators'
# filters may name it.
LOGGER = logging.getLogger("serving.gateway.runtime")


def read_spec(folder: Path, model: str, version: int) -> tuple[ServingSpec, bool]:
    """The version's serving spec from its ``assets.extra`` ``folder``, and whether it was made
    from the legacy ``preprocessing.json`` / ``labels.json`` (True) instead of read.

    Raises UnfitVersionError naming what is missing, invalid (with pydantic's field paths)
    or unreadable; an assets file that is there but no regular file is refused, not read as
    a version without a spec.
    """
    # A spec that is there but no regular file (a folder, a FIFO, a dangling or looping
    # symlink) is not a version without a spec: it was served from its legacy files.
    require_regular(folder / SPEC_FILE)
    if (folder / SPEC_FILE).is_file():
        try:
            text = read_asset(folder / SPEC_FILE, MAX_METADATA_BYTES)
            return ServingSpec.model_validate_json(text), False
        except (OSError, ValueError) as error:  # pydantic's ValidationError is a ValueError
            LOGGER.warning("%s v%d: invalid %s: %s", model, version, SPEC_FILE, error)
            where = f": {spec_problems(error)}" if isinstance(error, ValidationError) else ""
            raise UnfitVersionError(f"invalid {SPEC_FILE}{where}") from error
    legacy_files = folder / contract.PREPROCESSING_FILE, folder / contract.LABELS_FILE
    if not all(path.is_file() for path in legacy_files):
        # A folder without its SavedModel is said so (newuser9: an empty or nested one was
        # "no serving_spec.json", though the spec was there one folder down).
        if (missing := contract.no_saved_model_reason(folder.parent)) is not None:
            raise UnfitVersionError(f"the version folder is incomplete: {missing}")
        raise UnfitVersionError(f"no {SPEC_FILE} (nor legacy preprocessing.json and labels.json)")
    if not (folder / contract.TOKENIZER_FILE).is_file():
        raise UnfitVersionError(
            f"tokenizer {contract.TOKENIZER_FILE} is missing or not a regular file"
        )
    try:  # one read each, checked (too large, no regular file: UnfitVersionError) as read
        texts = [read_asset(path, MAX_METADATA_BYTES) for path in legacy_files]
        tokenizer_text = read_asset(folder / contract.TOKENIZER_FILE, MAX_TOKENIZER_BYTES)
    except OSError as error:  # gone or unreadable since the is_file() checks
        LOGGER.warning("%s v%d: cannot read legacy files: %r", model, version, error)
        raise UnfitVersionError("legacy assets cannot be read") from error
    try:
        preprocessing, labels = (json.loads(text.decode("utf-8")) for text in texts)
        vocab = vocab_bound(parse_tokenizer(tokenizer_text.decode("utf-8")))
        return legacy_spec(model, preprocessing, labels, vocab), True
    except (LegacyError, ValidationError) as error:
        LOGGER.warning("%s v%d: legacy files: %s", model, version, error)
        raise UnfitVersionError("legacy preprocessing.json/labels.json do not fit") from error
    except Exception as error:  # unreadable JSON or tokenizer
        LOGGER.warning("%s v%d: cannot read legacy files: %r", model, version, error)
        raise UnfitVersionError("legacy assets cannot be read") from error
