"""Turn load-test payloads into the id tensors the gateway would send, for direct gRPC calls.

It uses the gateway's own runtime units (``serving.gateway.runtime`` and the alias request
mapping of ``serving.gateway.aliases``, no TensorFlow), so direct backend calls carry exactly
the tensors of gateway calls for the same payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loadtests.payloads import Payload
from serving.contract import version_numbers
from serving.encoding import Tensors
from serving.gateway.aliases import prepare_alias
from serving.gateway.runtime import ModelRuntime, load_runtime
from serving.gateway.settings import GatewaySettings


def latest_version(model_dir: Path) -> int:
    """The highest integer version folder of a model."""
    versions = version_numbers(model_dir)
    if not versions:
        raise FileNotFoundError(f"no model version in {model_dir}")
    return versions[-1]


@dataclass(frozen=True)
class ModelInputs:
    """One model version's runtime unit, turning payloads into its signature's id tensors."""

    runtime: ModelRuntime

    @property
    def version(self) -> int:
        """The model version whose tokenizer makes the ids."""
        return self.runtime.version

    @classmethod
    def from_repo(cls, repo: Path, name: str, version: int | None = None) -> ModelInputs:
        """Load the runtime of ``repo/name/<version>`` (the latest version by default)."""
        version = latest_version(repo / name) if version is None else version
        return cls(load_runtime(repo, name, version, GatewaySettings(model_repo=repo)))

    def encode(self, payload: Payload) -> Tensors:
        """The signature inputs of a payload (a batch becomes one call, as in the gateway)."""
        return self.runtime.preprocess(prepare_alias(self.runtime, payload).instances)
