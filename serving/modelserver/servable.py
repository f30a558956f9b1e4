"""One loaded model version: a SavedModel, its SignatureDefs, input checks and warmup."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy.typing as npt
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving import contract
from serving.modelserver import packing
from serving.modelserver.errors import failed_precondition, from_code_number, invalid_argument
from serving.modelserver.signature_checks import (
    InputSpec,
    check_dtype,
    check_input_names,
    selected_outputs,
    tensor_shape,
)
from serving.modelserver.tensor_proto import decode_input
from serving.modelserver.versions import IrregularFileError

Array = npt.NDArray[Any]
Tensors = dict[str, Array]
MAX_WARMUP_RECORDS = 1000  # the official server's cap
# A signature whose first CALLS_TO_DECIDE calls take less than this (their lower quartile:
# a busy machine only adds time, so the fastest calls are the closest to the cost) runs its
# ops in the calling thread (RunOptions.inter_op_thread_pool = -1: no hand-off of each op to
# the inter-op pool; config.proto: "ONLY for simple graphs"). Measured here (loadtests
# README): qa's call 0.88 -> 0.67 ms of CPU; profile's ~4.4 ms alike either way;
# similarity's ~75 ms about 5% more CPU in the caller's thread (its ops overlap in the pool).
# 3 ms: between qa's (0.7-1.5 ms in the server, its warm-up and load included) and profile's
# (4.3-5.4 ms, the same CPU either way).
CALLER_THREAD_BELOW_SECONDS = 0.003
CALLS_TO_DECIDE = 32
LOG = logging.getLogger(__name__)
Runner = Callable[..., list[Any]]


@dataclass(frozen=True)
class SignaturePlan:
    """One signature of a loaded version, as a request uses it: the SignatureDef, input
    aliases (sorted: the feed order), output aliases (sorted: the fetch order), input specs,
    whether its batches may be split by length, the session callable that runs it, and the
    durations of its first calls (None once the callable is chosen)."""

    signature: meta_graph_pb2.SignatureDef
    aliases: tuple[str, ...]
    alias_set: frozenset[str]
    outputs: tuple[str, ...]
    inputs: tuple[InputSpec, ...]
    splittable: bool
    runner: Runner
    timings: list[float] | None


class LoadedVersion:
    """A SavedModel version run as TF Serving runs it: its serving MetaGraph in a Session.

    Requests feed and fetch the tensor names of the SignatureDef, so input shapes are left to
    the graph (as in TF Serving) and TF1 SavedModels without declared shapes load too.
    Thread-safe: a Session runs concurrent calls. What a signature needs per request (sorted
    aliases, dtypes, the session callable) is read once (:meth:`plan`). A signature whose
    first calls are short (lower quartile under ``caller_thread_below`` seconds; 0: never) runs
    its ops in the calling thread (:data:`CALLER_THREAD_BELOW_SECONDS`).
    """

    def __init__(
        self,
        name: str,
        version: int,
        path: Path,
        *,
        caller_thread_below: float = CALLER_THREAD_BELOW_SECONDS,
    ) -> None:
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
        self._caller_thread_below = caller_thread_below
        self._callables: dict[tuple[str, bool], Runner] = {}
        self._callables_lock = threading.Lock()
        self._plans: dict[str, SignaturePlan] = {}

    def input_specs(self, signature_name: str) -> list[InputSpec]:
        """The inputs of a signature, sorted by alias as TF Serving orders them."""
        return list(self.plan(signature_name).inputs)

    def signature_def(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef for a name ('' means serving_default), FAILED_PRECONDITION if absent."""
        key = self._key(signature_name)
        if key not in self.signature_defs:
            raise failed_precondition(f'Serving signature key "{key}" not found.')
        return self.signature_defs[key]

    def plan(self, signature_name: str) -> SignaturePlan:
        """What a request of this signature needs, read from its SignatureDef once per version
        (FAILED_PRECONDITION for an unknown signature, as :meth:`signature_def`)."""
        key = self._key(signature_name)
        plan = self._plans.get(key)
        if plan is None:  # racing threads build equal plans; the session callable is locked
            plan = self._plans[key] = self._make_plan(key)
        return plan

    def check_request(
        self, signature_name: str, inputs: Mapping[str, Array], output_filter: Sequence[str]
    ) -> list[str]:
        """Validate input names and dtypes (shapes are the graph's business); return outputs."""
        plan = self.plan(signature_name)
        if inputs.keys() != plan.alias_set:
            check_input_names(set(inputs), list(plan.aliases))
        for index, spec in enumerate(plan.inputs):
            check_dtype(index, spec, inputs[spec.alias])
        if not output_filter:
            return list(plan.outputs)
        return selected_outputs(plan.signature, output_filter)

    def splittable(self, signature_name: str) -> bool:
        """Whether batches of this signature may run as several calls split by length
        (integer ``[batch, length]`` inputs, fixed non-batch output dims; see packing.py)."""
        return self.plan(signature_name).splittable

    def run(self, signature_name: str, inputs: Mapping[str, Array]) -> Tensors:
        """Run a signature on numpy inputs; every output, as numpy (strings as bytes objects)."""
        plan = self.plan(signature_name)
        started = time.perf_counter()
        try:
            values = plan.runner(*[inputs[alias] for alias in plan.aliases])
        except tf.errors.OpError as error:
            raise from_code_number(error.error_code, error.message) from error
        except (TypeError, ValueError) as error:
            raise invalid_argument(str(error)) from error
        if plan.timings is not None:
            self._time_call(signature_name, plan, time.perf_counter() - started)
        return dict(zip(plan.outputs, values, strict=True))

    def in_caller_thread(self, signature_name: str) -> bool | None:
        """Whether a signature's calls run in the caller's thread (None: not decided yet)."""
        plan = self.plan(signature_name)
        if plan.timings is not None:
            return None
        return plan.runner is self._callables.get((self._key(signature_name), True))

    def _time_call(self, signature_name: str, plan: SignaturePlan, seconds: float) -> None:
        """Record a call of a plan still deciding; after CALLS_TO_DECIDE pick its callable."""
        assert plan.timings is not None
        plan.timings.append(seconds)
        key = self._key(signature_name)
        with self._callables_lock:
            if len(plan.timings) < CALLS_TO_DECIDE or self._plans.get(key) is not plan:
                return
            quartile = sorted(plan.timings)[len(plan.timings) // 4]
            inline = quartile < self._caller_thread_below
            runner = self._callable(key, plan.signature, plan.aliases, plan.outputs, inline)
            self._plans[key] = replace(plan, runner=runner, timings=None)
        LOG.info(
            "%s version %d signature %s: calls take %.2f ms (lower quartile); ops run in the %s",
            *(self.name, self.version, key, quartile * 1e3),
            "calling thread" if inline else "inter-op pool",
        )

    @staticmethod
    def _key(signature_name: str) -> str:
        return signature_name or contract.SIGNATURE_NAME

    def _make_plan(self, key: str) -> SignaturePlan:
        signature = self.signature_def(key)
        aliases = tuple(sorted(signature.inputs))
        outputs = tuple(sorted(signature.outputs))
        inputs = tuple(
            InputSpec(
                alias,
                tf.dtypes.as_dtype(signature.inputs[alias].dtype),
                tensor_shape(signature.inputs[alias].tensor_shape),
            )
            for alias in aliases
        )
        splittable = packing.splittable(
            [spec.shape for spec in inputs],
            [spec.dtype.is_integer for spec in inputs],
            [tensor_shape(signature.outputs[alias].tensor_shape) for alias in outputs],
        )
        try:
            with self._callables_lock:
                runner = self._callable(key, signature, aliases, outputs, False)
        except tf.errors.OpError as error:  # a signature that names no tensor (the init op's
            # NoOp): the Session's own error and code, as TF Serving's Session::Run gives it
            raise from_code_number(error.error_code, error.message) from error
        return SignaturePlan(
            signature, aliases, frozenset(aliases), outputs, inputs, splittable, runner, []
        )

    def _callable(
        self,
        key: str,
        signature: meta_graph_pb2.SignatureDef,
        aliases: tuple[str, ...],
        outputs: tuple[str, ...],
        caller_thread: bool,
    ) -> Runner:
        """The session callable feeding ``aliases`` and fetching ``outputs`` in that order
        (the signature's plan's: one feed order; caller holds the lock); made once."""
        if (key, caller_thread) not in self._callables:
            # A CallableOptions callable feeds by tensor name with no Python-side shape
            # check, as TF Serving's C++ Session::Run does (Session.make_callable and
            # Session.run would reject shapes the graph accepts). Private, but stable
            # since TF 1.5 and pinned with TensorFlow in requirements.
            options = config_pb2.CallableOptions(
                feed=[signature.inputs[alias].name for alias in aliases],
                fetch=[signature.outputs[alias].name for alias in outputs],
            )
            if caller_thread:  # a graph placed on several devices still uses the pool
                options.run_options.inter_op_thread_pool = -1
            self._callables[(key, caller_thread)] = self._session._make_callable_from_options(
                options
            )
        return self._callables[(key, caller_thread)]

    def warm_up(self) -> int:
        """Replay ``assets.extra/tf_serving_warmup_requests`` (if any); return the count."""
        path = self.path / contract.ASSETS_DIR / contract.WARMUP_FILE
        if path.exists() and not path.is_file():
            # TF Serving fails such a load too (the file exists, its read fails); skipping it
            # served a version whose warmup, broken by a bad copy, was never run. Found by the
            # adversarial repo pass 5; a FIFO there would block the load.
            raise IrregularFileError(f"{contract.WARMUP_FILE} is not a regular file")
        if not path.is_file():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.WhichOneof("log_type") != "predict_log":
                raise ValueError("only predict_log warmup records are supported")
            request = log.predict_log.request
            # The requests' bounded parser: a garbled record's fill of billions (pass 7).
            inputs = {key: decode_input(key, value) for key, value in request.inputs.items()}
            self.check_request(request.model_spec.signature_name, inputs, ())
            self.run(request.model_spec.signature_name, inputs)
            count += 1
        return count
