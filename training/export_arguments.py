"""The checks ``training.export.export_for_serving`` runs on its arguments before it loads a
tokenizer or touches the model: each wrong argument is one exception naming it."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from serving import contract
from serving.numbers import INT64_MAX
from serving.spec import SPEC_FILE, ServingSpec, dump_spec, instance_problem

__all__ = [
    "MODEL_NAME_PATTERN",
    "check_arguments",
    "check_version_and_warmup",
    "output_folder_problem",
]

# A model name is a folder name and a URL path segment: no dots (hidden staging folders),
# no slashes.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


def check_arguments(
    spec: ServingSpec, tokenizers: Mapping[str, object], name: str, extra: Mapping[str, object]
) -> None:
    """Raise ``TypeError``/``ValueError`` (pydantic's ``ValidationError`` for the spec) for a
    spec that is none or breaks its own rules, a bad model name, tokenizers other than the
    spec's files, or an extra asset named like a file the export writes."""
    if not isinstance(spec, ServingSpec):  # a dict was "'dict' object has no attribute ..."
        raise TypeError(
            f"spec must be a serving.spec.ServingSpec, not {type(spec).__name__} "
            "(ServingSpec.model_validate(d) reads a dict)"
        )
    if re.match(MODEL_NAME_PATTERN, name) is None:
        raise ValueError(f"model name {name!r} must match {MODEL_NAME_PATTERN}")
    # Checked as the gateway reads it: a spec changed with model_copy(update=...) skips
    # pydantic's checks (a signature_name of "" was exported, then served as serving_default).
    ServingSpec.model_validate_json(dump_spec(spec))  # ValidationError (a ValueError)
    needed = spec.tokenizer_files()
    if set(tokenizers) != set(needed):
        raise ValueError(f"tokenizers must map exactly {needed}, got {sorted(tokenizers)}")
    reserved = {SPEC_FILE, contract.MODEL_CARD_FILE, contract.WARMUP_FILE, *needed}
    for file in extra:
        if file in reserved or Path(file).name != file or file.startswith("."):
            raise ValueError(f"extra asset {file!r} must be a bare file name not in {reserved}")


def check_version_and_warmup(spec: ServingSpec, version: object, instances: object) -> None:
    """Raise ``ValueError`` for a ``version`` outside 0 to 2**63-1 (TF Serving's int64
    versions, ``serving.numbers.parse_version``) or a warmup instance that is no request
    instance of ``spec`` (``serving.spec.instance_problem``), ``TypeError`` for
    ``warmup_instances`` that are not a list."""
    # Found by the new-user trial (newuser9): version=-3, True or 2**63 was written as a
    # folder no server reads as a version ("-3", "True"), and the export reported success; a
    # warmup instance without an input field was a bare KeyError from the encoder after the
    # model was checked, a string of them a TypeError.
    if version is not None and (
        not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= INT64_MAX
    ):
        raise ValueError(
            f"version must be a whole number from 0 to {INT64_MAX} (a version folder's name, "
            f"as TF Serving reads it), got {version!r}"
        )
    if isinstance(instances, str | bytes | Mapping) or not isinstance(instances, Sequence):
        raise TypeError(
            f"warmup_instances must be a list of request instances, not {type(instances).__name__}"
        )
    for index, instance in enumerate(instances):
        if problem := instance_problem(spec.inputs, instance, f"warmup_instances[{index}]"):
            raise ValueError(problem)


def output_folder_problem(path: Path) -> str | None:
    """Why no folder can be made at ``path`` (or it is none), or None: its nearest existing
    part is a file, or a hidden folder cannot be made and removed there (a read-only mount,
    ``/proc``; root passes every permission check there, so only trying tells). Checked before
    a run trains or an export checks the model: either had failed only when it wrote there."""
    existing = next((part for part in (path, *path.parents) if part.exists()), Path("."))
    if not existing.is_dir():
        return f"{str(existing)!r} is not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as error:
        return (
            f"cannot make a folder in {str(existing)!r}: {error.strerror or type(error).__name__}"
        )
    return None
