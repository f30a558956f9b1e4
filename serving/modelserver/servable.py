"""One loaded model version: a SavedModel, its SignatureDefs, input checks and warmup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving import contract
from serving.modelserver.errors import failed_precondition, from_code_number, invalid_argument

Array = npt.NDArray[Any]
Tensors = dict[str, Array]
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
MAX_WARMUP_RECORDS = 1000  # the official server's cap


def is_complete_version(path: Path) -> bool:
    """True when a version folder holds a SavedModel file (it is not still being written)."""
    return any((path / name).is_file() for name in SAVED_MODEL_FILES)


@dataclass(frozen=True)
class InputSpec:
    """A signature input's alias, dtype and shape (``None`` for unknown rank)."""

    alias: str
    dtype: tf.DType
    shape: tuple[int, ...] | None


class LoadedVersion:
    """A SavedModel version ready to run its signatures."""

    def __init__(self, name: str, version: int, path: Path) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = read_signature_defs(path)
        self._model = tf.saved_model.load(str(path))
        self._functions = dict(self._model.signatures)

    def input_specs(self, signature_name: str) -> list[InputSpec]:
        """The inputs of a signature, sorted by alias as TF Serving orders them."""
        signature = self.signature_def(signature_name)
        specs = []
        for alias in sorted(signature.inputs):
            info = signature.inputs[alias]
            shape = info.tensor_shape
            dims = None if shape.unknown_rank else tuple(dim.size for dim in shape.dim)
            specs.append(InputSpec(alias, tf.dtypes.as_dtype(info.dtype), dims))
        return specs

    def signature_def(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef for a name ('' means serving_default), FAILED_PRECONDITION if absent."""
        key = signature_name or contract.SIGNATURE_NAME
        if key not in self.signature_defs or key not in self._functions:
            raise failed_precondition(f'Serving signature key "{key}" not found.')
        return self.signature_defs[key]

    def check_request(
        self, signature_name: str, inputs: Mapping[str, Array], output_filter: Sequence[str]
    ) -> list[str]:
        """Validate inputs (names, dtypes, ranks, batch sizes); return the outputs to send."""
        specs = self.input_specs(signature_name)
        _check_input_names(set(inputs), [spec.alias for spec in specs])
        for index, spec in enumerate(specs):
            _check_input(index, spec, inputs[spec.alias])
        sizes = {np.shape(value)[0] if np.ndim(value) else None for value in inputs.values()}
        if len(sizes) > 1:
            raise invalid_argument(
                "Input tensors must have equal 0th-dimension size; got "
                + ", ".join(f"{key}: {np.shape(value)}" for key, value in sorted(inputs.items()))
            )
        return _selected_outputs(self.signature_def(signature_name), output_filter)

    def run(self, signature_name: str, inputs: Mapping[str, Array]) -> Tensors:
        """Call a signature on numpy inputs and return numpy outputs (no validation)."""
        function = self._functions[signature_name or contract.SIGNATURE_NAME]
        try:
            outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        except tf.errors.OpError as error:
            raise from_code_number(error.error_code, error.message) from error
        except (TypeError, ValueError) as error:
            raise invalid_argument(str(error)) from error
        return {key: value.numpy() for key, value in outputs.items()}

    def warm_up(self) -> int:
        """Replay ``assets.extra/tf_serving_warmup_requests`` (if any); return the count."""
        path = self.path / contract.ASSETS_DIR / contract.WARMUP_FILE
        if not path.is_file():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.WhichOneof("log_type") != "predict_log":
                raise ValueError("only predict_log warmup records are supported")
            request = log.predict_log.request
            inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
            self.check_request(request.model_spec.signature_name, inputs, ())
            self.run(request.model_spec.signature_name, inputs)
            count += 1
        return count


def read_signature_defs(path: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the SavedModel's serving MetaGraph, as TF Serving reports them."""
    saved_model = saved_model_pb2.SavedModel()
    binary = path / SAVED_MODEL_FILES[0]
    if binary.is_file():
        saved_model.ParseFromString(binary.read_bytes())
    else:
        text_format.Parse((path / SAVED_MODEL_FILES[1]).read_text(), saved_model)
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{path}: no MetaGraph tagged 'serve'")


def _check_input_names(sent: set[str], expected: list[str]) -> None:
    if sent == set(expected):
        return
    extra = sorted(sent - set(expected))
    missing = sorted(set(expected) - sent)
    raise invalid_argument(
        f"input size does not match signature: {len(sent)}!={len(expected)} "
        f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(expected)}}}). "
        f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
    )


def _check_input(index: int, spec: InputSpec, value: Array) -> None:
    actual = tf.dtypes.as_dtype(value.dtype) if value.dtype != object else tf.string
    if actual != spec.dtype:
        raise invalid_argument(
            f"Expects arg[{index}] to be {spec.dtype.name} but {actual.name} is provided "
            f"(input '{spec.alias}')"
        )
    if spec.shape is None:
        return
    shape = np.shape(value)
    compatible = len(shape) == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape, shape, strict=True)
    )
    if not compatible:
        wanted = [None if dim == -1 else dim for dim in spec.shape]
        raise invalid_argument(
            f"input '{spec.alias}' has shape {list(shape)} but the signature expects {wanted}"
        )


def _selected_outputs(
    signature: meta_graph_pb2.SignatureDef, output_filter: Sequence[str]
) -> list[str]:
    names = sorted(signature.outputs)
    if not output_filter:
        return names
    seen: set[str] = set()
    for alias in output_filter:
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        if alias not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(names)}}}."
            )
        seen.add(alias)
    return list(output_filter)
