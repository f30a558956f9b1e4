"""Turn load-test payloads into the id tensors the gateway would send, for direct gRPC calls.

The texts of a request are tokenised with ``serving.tokenization.encode_texts`` and the
``tokenizer.json``/``preprocessing.json`` of the model version the server runs, exactly as
the gateway does, so direct backend calls carry the same tensors as gateway calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from loadtests.payloads import Payload, instances_of
from serving import contract
from serving.tokenization import encode_texts, load_tokenizer

IdMatrix = npt.NDArray[np.int32]
TextGetter = Callable[[Payload, str], str]
DEFAULT_SEPARATOR = "[SEP]"


def latest_version(model_dir: Path) -> int:
    """The highest integer version folder of a model."""
    versions = [int(child.name) for child in model_dir.iterdir() if child.name.isdigit()]
    if not versions:
        raise FileNotFoundError(f"no model version in {model_dir}")
    return max(versions)


def input_texts(model: str, instance: Payload, separator: str) -> dict[str, str]:
    """The text behind each signature input of one request instance."""
    if model == "qa":
        return {"article_ids": instance["article"], "question_ids": instance["question"]}
    if model == "profile":
        return {"post_ids": f" {separator} ".join(instance["posts"])}
    raise ValueError(f"no single-instance texts for {model!r}")


@dataclass(frozen=True)
class ModelInputs:
    """One model version's tokenizer and input lengths."""

    name: str
    version: int
    tokenizer: Tokenizer
    preprocessing: dict[str, Any]

    @classmethod
    def from_repo(cls, repo: Path, name: str, version: int | None = None) -> ModelInputs:
        """Load the assets of ``repo/name/<version>`` (the latest version by default)."""
        version = latest_version(repo / name) if version is None else version
        assets = repo / name / str(version) / contract.ASSETS_DIR
        preprocessing = json.loads((assets / contract.PREPROCESSING_FILE).read_text())
        tokenizer = load_tokenizer(assets / contract.TOKENIZER_FILE)
        return cls(name=name, version=version, tokenizer=tokenizer, preprocessing=preprocessing)

    def _encode(self, key: str, texts: list[str]) -> IdMatrix:
        spec = self.preprocessing["inputs"][key]
        return encode_texts(self.tokenizer, texts, spec["max_length"], spec["truncation"])

    def encode(self, payload: Payload) -> dict[str, IdMatrix]:
        """The signature inputs of a payload (a batch becomes one call, as in the gateway)."""
        if self.name == "similarity":
            pairs = payload["pairs"]
            return {
                "left_ids": self._encode("left_ids", [pair["text_a"] for pair in pairs]),
                "right_ids": self._encode("right_ids", [pair["text_b"] for pair in pairs]),
            }
        separator = str(self.preprocessing.get("post_separator", DEFAULT_SEPARATOR))
        rows = [input_texts(self.name, item, separator) for item in instances_of(payload)]
        return {
            key: self._encode(key, [row[key] for row in rows])
            for key in contract.SIGNATURES[self.name].inputs
        }
