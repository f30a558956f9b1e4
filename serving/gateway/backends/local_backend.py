"""In-process SavedModels (development and benchmarks): imports TensorFlow when built."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serving import contract
from serving.gateway.backends.base import (
    AVAILABLE,
    Arrays,
    ModelMetadata,
    TensorSpec,
    VersionSelector,
    VersionStatus,
)
from serving.gateway.errors import BackendError, BackendFailure
from serving.protos import tfs_wire_pb2 as wire


class LocalBackend:
    """Loads ``repo/<model>/<version>`` with ``tf.saved_model.load`` on first use."""

    def __init__(self, model_repo: Path) -> None:
        import tensorflow as tf  # only when this backend is chosen: it costs ~3 s and ~600 MB

        self._tf: Any = tf
        self.model_repo = model_repo
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, int], Any] = {}

    def predict(
        self,
        model: str,
        selector: VersionSelector,
        inputs: Mapping[str, npt.NDArray[Any]],
        request_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Arrays:
        """Call the version's signature named by the selector, in this process (no deadline:
        ``timeout_seconds`` is accepted for the protocol and not used)."""
        function = self._signature(model, self._resolve(model, selector), selector.signature_name)
        if function is None:
            raise BackendError(
                BackendFailure.INVALID_ARGUMENT, f"no signature {selector.signature_name!r}"
            )
        tensors = {key: self._tf.constant(value) for key, value in inputs.items()}
        try:
            outputs = function(**tensors)
        except (TypeError, ValueError, self._tf.errors.InvalidArgumentError) as error:
            raise BackendError(BackendFailure.INVALID_ARGUMENT, str(error)) from error
        return {key: np.asarray(value.numpy()) for key, value in outputs.items()}

    def model_status(self, model: str, request_id: str | None = None) -> list[VersionStatus]:
        """Every complete version folder counts as AVAILABLE."""
        versions = self._versions(model)
        if not versions:
            raise BackendError(BackendFailure.NOT_FOUND, f"no versions of {model}")
        return [VersionStatus(version=version, state=AVAILABLE) for version in versions]

    def model_metadata(
        self, model: str, selector: VersionSelector, request_id: str | None = None
    ) -> ModelMetadata:
        """Read the selector's signature of a loaded version (empty inputs and outputs if it
        has none of that name)."""
        version = self._resolve(model, selector)
        function = self._signature(model, version, selector.signature_name)
        names = tuple(sorted(self._loaded[(model, version)].signatures.keys()))
        if function is None:
            return ModelMetadata(name=model, version=version, signatures=names)
        inputs = function.structured_input_signature[1]
        outputs = function.structured_outputs
        return ModelMetadata(
            name=model,
            version=version,
            inputs={key: _spec(value) for key, value in inputs.items()},
            outputs={key: _spec(value) for key, value in outputs.items()},
            signatures=names,
        )

    def close(self) -> None:
        """Forget loaded models."""
        with self._lock:
            self._loaded.clear()

    def _versions(self, model: str) -> list[int]:
        found = contract.version_dirs(contract.model_dir(self.model_repo, model))
        return [number for number, path in found.items() if (path / "saved_model.pb").exists()]

    def _resolve(self, model: str, selector: VersionSelector) -> int:
        versions = self._versions(model)
        if selector.label is not None and selector.version is None:
            # It knows no labels: TF Serving's answer to a label it does not know (a 404 for
            # the client), not NOT_FOUND, which names a label whose version is not loaded.
            raise BackendError(BackendFailure.INVALID_ARGUMENT, "labels need a real model server")
        if selector.version is None and versions:
            return versions[-1]
        if selector.version in versions:
            return int(selector.version)
        raise BackendError(BackendFailure.NOT_FOUND, f"{model} {selector.describe()} not found")

    def _signature(self, model: str, version: int, name: str) -> Any:
        """The loaded version's signature ``name`` (loaded on first use), or None."""
        with self._lock:
            key = (model, version)
            if key not in self._loaded:
                path = contract.version_dirs(contract.model_dir(self.model_repo, model))[version]
                self._loaded[key] = self._tf.saved_model.load(str(path))
            signatures = self._loaded[key].signatures
            return signatures.get(name)


def _spec(tensor_spec: Any) -> TensorSpec:
    shape = tuple(-1 if size is None else int(size) for size in tensor_spec.shape)
    enum = tensor_spec.dtype.as_datatype_enum
    name = wire.DataType.Name(enum) if enum in wire.DataType.values() else str(tensor_spec.dtype)
    return TensorSpec(dtype=name, shape=shape)
