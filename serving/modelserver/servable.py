"""One loaded model version: a SavedModel, its SignatureDefs, input checks and warmup."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy.typing as npt
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving import contract
from serving.modelserver import packing
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
    """A SavedModel version run as TF Serving runs it: its serving MetaGraph in a Session.

    Requests feed and fetch the tensor names of the SignatureDef, so input shapes are left to
    the graph (as in TF Serving) and TF1 SavedModels without declared shapes load too.
    Thread-safe: a Session runs concurrent calls.
    """

    def __init__(self, name: str, version: int, path: Path) -> None:
        self.name = name
        self.version = version
        self.path = path
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        with self._graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(
                self._session, [tf.saved_model.SERVING], str(path)
            )
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(meta_graph.signature_def)
        self._callables: dict[tuple[str, tuple[str, ...]], Callable[..., list[Array]]] = {}
        self._callables_lock = threading.Lock()

    def input_specs(self, signature_name: str) -> list[InputSpec]:
        """The inputs of a signature, sorted by alias as TF Serving orders them."""
        signature = self.signature_def(signature_name)
        specs = []
        for alias in sorted(signature.inputs):
            info = signature.inputs[alias]
            shape = info.tensor_shape
            specs.append(InputSpec(alias, tf.dtypes.as_dtype(info.dtype), _shape(shape)))
        return specs

    def signature_def(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef for a name ('' means serving_default), FAILED_PRECONDITION if absent."""
        key = signature_name or contract.SIGNATURE_NAME
        if key not in self.signature_defs:
            raise failed_precondition(f'Serving signature key "{key}" not found.')
        return self.signature_defs[key]

    def check_request(
        self, signature_name: str, inputs: Mapping[str, Array], output_filter: Sequence[str]
    ) -> list[str]:
        """Validate input names and dtypes (shapes are the graph's business); return outputs."""
        specs = self.input_specs(signature_name)
        _check_input_names(set(inputs), [spec.alias for spec in specs])
        for index, spec in enumerate(specs):
            _check_dtype(index, spec, inputs[spec.alias])
        return _selected_outputs(self.signature_def(signature_name), output_filter)

    def splittable(self, signature_name: str) -> bool:
        """Whether batches of this signature may run as several calls split by length
        (integer ``[batch, length]`` inputs, fixed non-batch output dims; see packing.py)."""
        signature = self.signature_def(signature_name)
        specs = self.input_specs(signature_name)
        return packing.splittable(
            [spec.shape for spec in specs],
            [spec.dtype.is_integer for spec in specs],
            [_shape(info.tensor_shape) for info in signature.outputs.values()],
        )

    def run(self, signature_name: str, inputs: Mapping[str, Array]) -> Tensors:
        """Run a signature on numpy inputs; every output, as numpy (strings as bytes objects)."""
        key = signature_name or contract.SIGNATURE_NAME
        signature = self.signature_def(key)
        aliases = tuple(sorted(signature.inputs))
        outputs = sorted(signature.outputs)
        runner = self._callable(key, aliases)
        try:
            values = runner(*(inputs[alias] for alias in aliases))
        except tf.errors.OpError as error:
            raise from_code_number(error.error_code, error.message) from error
        except (TypeError, ValueError) as error:
            raise invalid_argument(str(error)) from error
        return dict(zip(outputs, values, strict=True))

    def _callable(self, key: str, aliases: tuple[str, ...]) -> Callable[..., list[Array]]:
        with self._callables_lock:
            if (key, aliases) not in self._callables:
                signature = self.signature_defs[key]
                # A CallableOptions callable feeds by tensor name with no Python-side shape
                # check, as TF Serving's C++ Session::Run does (Session.make_callable and
                # Session.run would reject shapes the graph accepts). Private, but stable
                # since TF 1.5 and pinned with TensorFlow in requirements.
                options = config_pb2.CallableOptions(
                    feed=[signature.inputs[alias].name for alias in aliases],
                    fetch=[signature.outputs[alias].name for alias in sorted(signature.outputs)],
                )
                self._callables[(key, aliases)] = self._session._make_callable_from_options(options)
            return self._callables[(key, aliases)]

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


def _shape(shape: Any) -> tuple[int, ...] | None:
    """A TensorShapeProto as a tuple (-1: unknown size), None for unknown rank."""
    return None if shape.unknown_rank else tuple(int(dim.size) for dim in shape.dim)


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


def _check_dtype(index: int, spec: InputSpec, value: Array) -> None:
    actual = tf.dtypes.as_dtype(value.dtype) if value.dtype != object else tf.string
    if actual != spec.dtype:
        # TensorFlow's own wording for a fed tensor of the wrong type (what TF Serving sends).
        raise invalid_argument(
            f"Expects arg[{index}] to be {spec.dtype.name} but {actual.name} is provided "
            f"(input '{spec.alias}')"
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
