"""A model version's ``assets.extra/`` files: tokenizer, labels and preprocessing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from serving import contract
from serving.tokenization import (
    Truncation,
    encode_texts,
    file_sha256,
    join_posts,
    load_tokenizer,
)


class AssetsError(Exception):
    """A version's assets are missing or malformed, so the gateway must not route to it."""


@dataclass(frozen=True)
class InputLength:
    """How one signature input is cut: its maximum length and which end is kept."""

    max_length: int
    truncation: Truncation


@dataclass(frozen=True)
class VersionAssets:
    """Everything the gateway needs to talk to one model version, loaded before routing."""

    model: str
    version: int
    tokenizer: Tokenizer
    tokenizer_sha256: str
    inputs: dict[str, InputLength]
    labels: dict[str, Any]
    post_separator: str
    max_chars: int | None = None  # profile texts are cut here before tokenising, as in training

    def encode(self, input_name: str, texts: Sequence[str]) -> npt.NDArray[np.int32]:
        """Ids for one signature input, padded to the longest text of the batch."""
        length = self.inputs[input_name]
        return encode_texts(self.tokenizer, texts, length.max_length, length.truncation)

    def join_posts(self, posts: Sequence[str]) -> str:
        """One profile text from a person's posts, joined by the version's separator."""
        return join_posts(posts, self.post_separator, self.max_chars)


def version_dir(repo: Path, model: str, version: int) -> Path:
    """``repo/<model>/<version>``."""
    return repo / model / str(version)


def load_assets(repo: Path, model: str, version: int) -> VersionAssets:
    """Read and check a version's assets; raise AssetsError if anything is off."""
    folder = version_dir(repo, model, version) / contract.ASSETS_DIR
    try:
        preprocessing = _read_json(folder / contract.PREPROCESSING_FILE)
        labels = _read_json(folder / contract.LABELS_FILE)
        tokenizer_path = folder / contract.TOKENIZER_FILE
        tokenizer = load_tokenizer(tokenizer_path)
        sha256 = file_sha256(tokenizer_path)
        inputs = {
            name: InputLength(int(spec["max_length"]), _truncation(spec.get("truncation")))
            for name, spec in preprocessing["inputs"].items()
        }
    except Exception as error:  # tokenizers raises a bare Exception for a bad file
        raise AssetsError(f"{model} version {version}: cannot load {folder}: {error}") from error
    expected = contract.SIGNATURES[model].inputs if model in contract.SIGNATURES else ()
    missing = set(expected) - set(inputs)
    if missing:
        raise AssetsError(f"{model} version {version}: preprocessing lacks {sorted(missing)}")
    return VersionAssets(
        model=model,
        version=version,
        tokenizer=tokenizer,
        tokenizer_sha256=sha256,
        inputs=inputs,
        labels=labels,
        post_separator=str(preprocessing.get("post_separator", "[SEP]")),
        max_chars=_optional_int(preprocessing.get("max_chars")),
    )


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _read_json(path: Path) -> dict[str, Any]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(payload, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return cast(dict[str, Any], payload)


def _truncation(value: object) -> Truncation:
    if value not in ("left", "right", None):
        raise ValueError(f"truncation must be left or right, not {value!r}")
    return "left" if value == "left" else "right"
