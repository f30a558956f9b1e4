"""Turn load-test payloads into the id tensors the gateway would send, for direct gRPC calls.

It uses the gateway's own asset loader and tensor builders (``serving.gateway.assets`` and
``serving.gateway.inference``, no TensorFlow), so direct backend calls carry exactly the
tensors of gateway calls for the same payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loadtests.payloads import Payload, instances_of
from serving.contract import version_numbers
from serving.gateway.assets import VersionAssets, load_assets
from serving.gateway.inference import Inputs, profile_inputs, qa_inputs, similarity_inputs
from serving.gateway.schemas import ProfileRequest, QARequest, SimilarityRequest


def latest_version(model_dir: Path) -> int:
    """The highest integer version folder of a model."""
    versions = version_numbers(model_dir)
    if not versions:
        raise FileNotFoundError(f"no model version in {model_dir}")
    return versions[-1]


@dataclass(frozen=True)
class ModelInputs:
    """One model version's assets, turning payloads into its signature's id tensors."""

    assets: VersionAssets

    @property
    def version(self) -> int:
        """The model version whose tokenizer makes the ids."""
        return self.assets.version

    @classmethod
    def from_repo(cls, repo: Path, name: str, version: int | None = None) -> ModelInputs:
        """Load the assets of ``repo/name/<version>`` (the latest version by default)."""
        version = latest_version(repo / name) if version is None else version
        return cls(load_assets(repo, name, version))

    def encode(self, payload: Payload) -> Inputs:
        """The signature inputs of a payload (a batch becomes one call, as in the gateway)."""
        if self.assets.model == "similarity":
            return similarity_inputs(self.assets, SimilarityRequest.model_validate(payload))
        items = instances_of(payload)
        if self.assets.model == "qa":
            return qa_inputs(self.assets, [QARequest.model_validate(item) for item in items])
        return profile_inputs(self.assets, [ProfileRequest.model_validate(item) for item in items])
