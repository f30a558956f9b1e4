"""The SavedModel side of an export: the spec's signature, its smoke check, warmup records."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from serving.encoding import Tensors
from serving.spec import HeadSpec, ServingSpec, TokenLabelsHead
from serving.spec_outputs import output_problem
from serving.tensor_batches import (
    left_padding_hint,
    longest_rows,
    moved_output,
    pad_description,
    pad_values,
    padded_further,
    random_output_reason,
)
from training.spec_check import (
    SpecMismatchError,
    as_built,
    fixed_length,
    head_width,
    is_scalar,
    model_inputs,
)


def write_saved_model(model: keras.Model, spec: ServingSpec, path: Path) -> None:
    """Write a SavedModel whose ``spec.signature_name`` signature is exactly the spec's.

    Inputs: int32 ``[None, None]`` per spec input tensor; an input the model takes at a fixed
    length (``keras.Input((16,))``) is right-padded with ``pad_id`` to it in the signature
    (the gateway sends rows as long as a batch's longest text; ``check_model`` made sure
    ``max_tokens`` fits); an input of ``padding: left`` then has its padding moved to the
    row's start (the gateway and batching pad on the right). Outputs: float32 per head
    output, ``[batch]`` for binary/regression/score heads (a ``[batch, 1]`` unit is
    flattened), ``[batch, tokens, len(labels)]`` for token heads (over a ``padding: left``
    input: moved back to the positions of the ids the gateway sent, so position ``i`` labels
    the row's ``i``-th id), ``[batch, width]`` for the others. Other model outputs are left
    out.
    """
    tensors = [item.tensor for item in spec.inputs]
    input_specs = [tf.TensorSpec([None, None], tf.int32, name=key) for key in tensors]
    lengths = {key: fixed_length(value) for key, value in model_inputs(model).items()}
    left = {item.tensor for item in spec.inputs if item.padding == "left"}
    pads = pad_values(spec)

    def serve(*inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        given = {
            key: _pad_to_length(ids, lengths[key], spec.pad_id)
            for key, ids in zip(tensors, inputs, strict=True)
        }
        sent = given
        given = {
            key: _padding_first(ids, pads, spec.pad_id) if key in left else ids
            for key, ids in given.items()
        }
        outputs = named_outputs(model, model(as_built(model, given), training=False))
        shaped = {head.output: _shape_output(head, outputs[head.output]) for head in spec.heads}
        for head in spec.token_heads():
            tensor = spec.input(head.input_field).tensor
            if tensor in left:
                shaped[head.output] = _positions_back(shaped[head.output], sent[tensor], pads)
        return shaped

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(spec.signature_name, serve, input_signature=input_specs)
    archive.write_out(str(path), verbose=False)


def _pad_to_length(ids: tf.Tensor, length: int | None, pad_id: int) -> tf.Tensor:
    if length is None:
        return ids
    missing = tf.maximum(length - tf.shape(ids)[1], 0)
    return tf.pad(ids[:, :length], [[0, 0], [0, missing]], constant_values=pad_id)


def _padding_first(ids: tf.Tensor, pads: Sequence[int], pad_id: int) -> tf.Tensor:
    """Right-padded rows (the gateway's, padded further with any of ``pads`` by batching) as
    left-padded ones with ``pad_id``, for a model trained on left padding (``padding:
    left``): each row's ids up to its last non-pad id are moved to the row's end."""
    width, positions, length = _row_lengths(ids, pads)
    source = positions - (width - length)
    moved = tf.gather(ids, tf.maximum(source, 0), batch_dims=1)
    return tf.where(source >= 0, moved, tf.constant(pad_id, ids.dtype))


def _row_lengths(ids: tf.Tensor, pads: Sequence[int]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Width, positions ``[1, width]`` and each row's length ``[rows, 1]`` (up to its last
    id that is none of ``pads``) of right-padded rows."""
    width = tf.shape(ids)[1]
    positions = tf.range(width)[tf.newaxis, :]
    text = tf.reduce_all(tf.stack([tf.not_equal(ids, pad) for pad in pads]), axis=0)
    length = tf.reduce_max(tf.where(text, positions + 1, 0), axis=1, keepdims=True)
    return width, positions, length


def _positions_back(outputs: tf.Tensor, sent: tf.Tensor, pads: Sequence[int]) -> tf.Tensor:
    """A token head's ``[rows, width, labels]`` outputs over rows :func:`_padding_first`
    moved, at the positions of the right-padded ids ``sent``: the row's ``i``-th id was at
    ``i + width - length``. Positions past a row's length (never read) repeat its last."""
    width, positions, length = _row_lengths(sent, pads)
    source = tf.minimum(positions + (width - length), width - 1)
    return tf.gather(outputs, source, batch_dims=1)


def named_outputs(model: keras.Model, outputs: Any) -> Mapping[str, Any]:
    """A model call's outputs by name, whether the model returns a dict, a list or a tensor."""
    if isinstance(outputs, Mapping):
        return outputs
    return dict(zip(model.output_names, keras.tree.flatten(outputs), strict=True))


def _shape_output(head: HeadSpec, tensor: tf.Tensor) -> tf.Tensor:
    tensor = tf.cast(tensor, tf.float32)
    # One-unit heads come out of Dense as [batch, 1]; the spec serves them as [batch].
    return tf.reshape(tensor, [-1]) if is_scalar(head) else tensor


def expected_shape(head: HeadSpec, batch: int, tokens: int = 0) -> tuple[int, ...]:
    """The served shape of a head's output for a batch of ``batch`` instances (token heads:
    ``tokens`` positions)."""
    if isinstance(head, TokenLabelsHead):
        return (batch, tokens, head_width(head))
    return (batch,) if is_scalar(head) else (batch, head_width(head))


def _token_positions(shape: tuple[int, ...], sent: tuple[int, ...]) -> str:
    """The token head's part of a wrong-shape refusal (whose needed shape had been the wrong
    one, "is [2, 2, 3]; the spec needs [2, 2, 3]") and, for an output of ``batch`` positions,
    Keras 3's ``TimeDistributed``, which gives ``[batch, batch, n]`` in a signature of
    unknown length (found by newuser7)."""
    text = f" (at least the {sent[1]} ids sent per row)"
    if shape[1] == shape[0] < sent[1]:
        text += (
            "; Keras's TimeDistributed gives [batch, batch, n] where the length is unknown: "
            "a Dense on [batch, length, d] already applies to each position, drop the "
            "TimeDistributed"
        )
    return text


def smoke_check(
    path: Path, spec: ServingSpec, tensors: Tensors, float16_outputs: Collection[str] = ()
) -> None:
    """Load the written SavedModel and run one batch through its signature.

    ``tensors``: a batch of at least 2 instances, so that an output computed over the whole
    batch (one row whatever the batch) shows. Raises :class:`SpecMismatchError` if the
    signature's outputs are not the heads' outputs, an output has not one row per instance
    or is not float32 of :func:`expected_shape`, or holds NaN or infinity, or is no
    probabilities where its head reads some (:func:`serving.spec_outputs.output_problem`), or
    moves when the inputs are padded further with ``pad_id``; or if the model rejects the
    largest id the spec allows (``vocab_size - 1``) in every input, or a row of an input's
    ``max_tokens`` ids.
    """
    loaded = tf.saved_model.load(str(path))
    function = loaded.signatures[spec.signature_name]
    outputs = function(**{key: tf.constant(value) for key, value in tensors.items()})
    declared = {head.output for head in spec.heads}
    if set(outputs) != declared:
        raise SpecMismatchError(f"signature outputs {sorted(outputs)} != heads {sorted(declared)}")
    batch = len(next(iter(tensors.values())))
    for head in spec.heads:
        value = outputs[head.output].numpy()
        if value.ndim == 0 or value.shape[0] != batch:
            rows = value.shape[0] if value.ndim else 0
            raise SpecMismatchError(
                f"head {head.field!r}: output {head.output!r} gives {rows} rows for a batch of "
                f"{batch} instances: every instance needs its own row (is it reduced over the "
                "batch axis, e.g. a mean over axis 0?)"
            )
        # A token head has a position per id sent (more: a fixed-length input's).
        sent, tokens = None, 0
        if isinstance(head, TokenLabelsHead) and value.ndim == 3:
            sent, tokens = tensors[spec.input(head.input_field).tensor], value.shape[1]
        expected = expected_shape(head, batch, tokens)
        # The shape to name in a refusal: a token head's positions are at least the ids sent.
        needed = (
            expected if sent is None else expected_shape(head, batch, max(tokens, sent.shape[1]))
        )
        if (
            value.dtype != np.float32
            or value.shape != expected
            or (sent is not None and tokens < sent.shape[1])
        ):
            raise SpecMismatchError(
                f"head {head.field!r}: output {head.output!r} is {value.dtype}{list(value.shape)}"
                f" for the example; the spec needs float32{list(needed)}"
                + (_token_positions(value.shape, sent.shape) if sent is not None else "")
            )
        if not np.isfinite(value).all():
            raise SpecMismatchError(not_finite(head, "the example", float16_outputs))
        problem = output_problem(head, value)
        if problem is not None:
            raise SpecMismatchError(problem)
    # First: padding further lengthens rows too.
    _check_longest(function, spec, tensors, float16_outputs)
    _check_padding(function, spec, tensors, outputs)
    # The gateway lets through every id below vocab_size: the model must accept the largest.
    probe = dict(tensors)
    for item in spec.inputs:
        probe[item.tensor] = tensors[item.tensor].copy()
        probe[item.tensor][:, 0] = item.vocab_size - 1
    try:
        function(**{key: tf.constant(value) for key, value in probe.items()})
    except tf.errors.InvalidArgumentError as error:
        raise SpecMismatchError(
            "the model rejects token id vocab_size - 1 of the spec's inputs: is vocab_size "
            "larger than its embedding?"
        ) from error


def not_finite(head: HeadSpec, where: str, float16_outputs: Collection[str]) -> str:
    """Why a head's output is refused as NaN or infinity for ``where``; for an output computed
    in float16 (a ``mixed_float16`` policy), the cause and remedy: float16 ends at 65504, and
    Keras's mixed-precision guide keeps a model's last layer float32 for this reason."""
    text = f"head {head.field!r}: output {head.output!r} is not finite for {where}"
    if head.output not in float16_outputs:
        return text
    return (
        f"{text}: the model computes it in float16 (mixed precision), which overflows above "
        "65504; make the head float32 (dtype='float32' on its last layer)"
    )


def _check_longest(
    function: Any, spec: ServingSpec, tensors: Tensors, float16_outputs: Collection[str]
) -> None:
    """Raise SpecMismatchError if the model fails, or answers NaN or infinity, on a row as
    long as the gateway sends for an input (its ``max_tokens`` ids: the first instance's
    words repeated): the example is short, and a model with fewer positions (a position
    embedding of 128 rows under ``max_tokens`` 256) failed every long request (502)."""
    for (field, probe), item in zip(longest_rows(spec, tensors), spec.inputs, strict=True):
        try:
            outputs = function(**{key: tf.constant(value) for key, value in probe.items()})
        except tf.errors.InvalidArgumentError as error:
            raise SpecMismatchError(
                f"input {field!r}: the model fails on a row of max_tokens "
                f"{item.max_tokens} ids, the longest the gateway sends (does it take fewer "
                "positions?): lower max_tokens to the length the model takes"
            ) from error
        for head in spec.heads:
            if not np.isfinite(outputs[head.output].numpy()).all():
                where = f"a row of max_tokens {item.max_tokens} ids of input {field!r}"
                raise SpecMismatchError(not_finite(head, where, float16_outputs))


def _check_padding(function: Any, spec: ServingSpec, tensors: Tensors, outputs: Any) -> None:
    """Raise SpecMismatchError if padding the inputs further with ``pad_id``, or with the 0 the
    local model server's batching pads with, moves an output: batching pads each request to
    its batch's longest, so the gateway would not route such a version (the gateway's probe:
    :func:`serving.tensor_batches.padded_further` with each of
    :func:`~serving.tensor_batches.pad_values`), or, when it moved, if the unpadded inputs sent
    again move it too (a model random at inference:
    :func:`~serving.tensor_batches.random_output_reason`)."""
    before = {head.output: outputs[head.output].numpy() for head in spec.heads}
    for value in pad_values(spec):
        padded = padded_further(spec, tensors, value)
        again = function(**{key: tf.constant(ids) for key, ids in padded.items()})
        moved = moved_output(before, {key: ids.numpy() for key, ids in again.items()})
        if moved is not None:
            repeated = function(**{key: tf.constant(ids) for key, ids in tensors.items()})
            if moved_output(before, {key: ids.numpy() for key, ids in repeated.items()}):
                head = next(head for head in spec.heads if head.output == moved)
                raise SpecMismatchError(f"head {head.field!r}: {random_output_reason(moved)}")
        for head in spec.heads:
            if head.output == moved:
                raise SpecMismatchError(
                    f"head {head.field!r}: output {head.output!r} changes when the inputs are "
                    f"padded further with {pad_description(spec, value)}: the model must mask its "
                    "padding (batching pads each request to its batch's longest; the gateway "
                    f"would not route it){left_padding_hint(spec)}"
                )


def write_warmup_requests(
    path: Path, name: str, signature_name: str, batches: Sequence[Tensors]
) -> None:
    """Write TF Serving's warmup file: a TFRecord of PredictionLog records, one per batch."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in batches:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=signature_name)
            )
            for key, value in batch.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(value, np.int32)))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
