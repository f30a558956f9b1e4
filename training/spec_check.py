"""Check a Keras model against a serving spec before anything is exported.

The spec (``serving/spec.py``) promises the gateway a signature: int32 ``[batch, length]``
inputs named by ``InputSpec.tensor`` and float32 outputs named by ``HeadSpec.output`` whose
widths follow the head kinds. A model that breaks the promise is refused here, with a message
naming the input or head, instead of being exported and then never routed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from tokenizers import Tokenizer

from serving.spec import (
    CategoricalHead,
    HeadSpec,
    MultilabelHead,
    SegmentWeightsHead,
    ServingSpec,
    TokenLabelsHead,
)
from serving.spec_outputs import scalar_width_hint
from serving.spec_tokenizers import unservable_reason
from training.spec_messages import (
    close_output_hint,
    inputs_mismatch,
    listed_outputs_hint,
    logits_problem,
    rename_hint,
)

LOGGER = logging.getLogger(__name__)


class SpecMismatchError(ValueError):
    """The model, its tokenizers or its exported signature do not fit the serving spec."""


def model_inputs(model: keras.Model) -> dict[str, Any]:
    """The model's input tensors by name (dict keys of a dict-input model, else tensor names)."""
    if isinstance(model.input, Mapping):
        return dict(model.input)
    return {tensor.name: tensor for tensor in model.inputs}


def as_built(model: keras.Model, given: Mapping[str, Any]) -> Any:
    """``given`` (tensors keyed as :func:`model_inputs` names them) in the structure the
    model was built on: its one tensor, a list in its inputs' order, or the dict. Keras maps a
    dict to any structure by name, but warns "The structure of `inputs` doesn't match the
    expected structure" on every export of a model built on ``keras.Model(ids, ...)``."""
    if isinstance(model.input, Mapping):
        return dict(given)
    return keras.tree.map_structure(lambda tensor: given[tensor.name], model.input)


def model_outputs(model: keras.Model) -> dict[str, Any]:
    """The model's output tensors by name (dict keys of a dict-output model, else output names;
    of a name several outputs share, the last: :func:`output_names` counts them)."""
    if isinstance(model.output, Mapping):
        return dict(model.output)
    return dict(zip(model.output_names, model.outputs, strict=True))


def output_names(model: keras.Model) -> list[str]:
    """Every output's name, repeats kept: a list-output model names each output by the layer
    that made it, so a layer called twice (or one returning several tensors, an LSTM with
    ``return_state``) gives two outputs one name."""
    if isinstance(model.output, Mapping):
        return list(model.output)
    return list(model.output_names)


def float16_outputs(model: keras.Model) -> set[str]:
    """The model's outputs computed in float16 (``mixed_float16`` without a float32 last layer):
    the export serves them as float32, but their values end at float16's 65504."""
    return {name for name, tensor in model_outputs(model).items() if tensor.dtype == "float16"}


# The largest id each input dtype holds exactly (floats: every integer up to 2 ** (mantissa
# bits + 1)); a served id above it would wrap or round into another word's id.
_ID_LIMITS = {"float16": 2**11, "bfloat16": 2**8, "float32": 2**24, "float64": 2**53}


def input_problem(tensor: Any, vocab_size: int) -> str | None:
    """Why a model input cannot take the gateway's int32 ``[batch, length]`` token ids of
    ``vocab_size``, or None.

    Refused: another rank (``keras.Input(())`` of one id or one string per instance), string
    or bool values (a model that tokenises raw text itself, e.g. with ``TextVectorization``:
    the gateway sends ids from the spec's tokenizer), and an integer or float dtype that
    cannot hold ``vocab_size - 1`` exactly (``uint8`` holds 255). Any other int or float
    dtype takes the ids as they are (Keras casts them).
    """
    shape, dtype = tuple(tensor.shape), str(tensor.dtype)
    if dtype in ("string", "bool"):
        return (
            f"the model takes {dtype} values; the spec's inputs are token ids (int32) the "
            "gateway makes with the spec's tokenizer (tokenise outside the model; for a "
            "TextVectorization layer, training.text_vectorization gives its tokenizer, "
            "text_vectorization_tokenizer, and the model after it, ids_model)"
        )
    if len(shape) != 2:
        return (
            f"the model takes shape {shape}; the spec's inputs are token-id matrices "
            "[batch, length] (keras.Input((None,), dtype='int32'))"
        )
    limit = _ID_LIMITS.get(dtype)
    if limit is None and dtype.startswith(("int", "uint")):
        limit = int(np.iinfo(dtype).max)
    if limit is None or limit >= vocab_size - 1:
        return None
    return f"the model's {dtype} holds ids up to {limit}, below vocab_size - 1 ({vocab_size - 1})"


def fixed_length(tensor: Any) -> int | None:
    """The length a model input takes (``keras.Input((16,))``: 16), or None for any length."""
    shape = tuple(tensor.shape)
    return shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None


def head_width(head: HeadSpec) -> int:
    """Units in a head's output row (a token's, for token heads): labels, segments, or 1 for
    scalar heads."""
    if isinstance(head, CategoricalHead | MultilabelHead | TokenLabelsHead):
        return len(head.labels)
    if isinstance(head, SegmentWeightsHead):
        return head.rule.max_segments
    return 1


def is_scalar(head: HeadSpec) -> bool:
    """Binary, regression and score heads are served as ``[batch]``."""
    return head.kind in ("binary", "regression", "score")


def check_model(model: keras.Model, spec: ServingSpec, tokenizers: Mapping[str, Tokenizer]) -> None:
    """Raise :class:`SpecMismatchError` unless the model and tokenizers fit the spec.

    Checks: the model's inputs are exactly the spec's input tensors, each a ``[batch,
    length]`` matrix of a dtype that holds every id (:func:`input_problem`), none with a
    leading underscore (TensorFlow refuses such a signature input name), an input of fixed
    length at least ``max_tokens`` long (the export pads rows to it); every head's output is
    a model output of one name (:func:`output_names`) and of rank 2 (rank 1 or 2 for scalar
    heads; rank 3 for token heads: :func:`check_token_shape`) whose known width is the head's
    (``len(labels)``, ``rule.max_segments``, or 1), not made by a linear layer where the head
    reads probabilities (:func:`training.spec_messages.logits_problem`);
    an ``Embedding`` fed directly by an input has at least ``vocab_size`` rows (other
    embeddings are left to the export smoke check); and the gateway can serve the inputs
    with these tokenizers (:func:`serving.spec_tokenizers.unservable_reason`: unknown words
    get ids, every id is below the input's ``vocab_size``, ``max_tokens`` leaves room beside
    the special tokens, the example has a word the model reads). Model outputs no head
    reads are left out of the export: a WARNING names them.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    inputs = model_inputs(model)
    declared = [item.tensor for item in spec.inputs]
    if set(inputs) != set(declared):
        integer = frozenset(
            name for name, tensor in inputs.items() if str(tensor.dtype).startswith(("int", "uint"))
        )
        raise SpecMismatchError(inputs_mismatch(declared, sorted(inputs), integer))
    for item in spec.inputs:
        problem = input_problem(inputs[item.tensor], item.vocab_size)
        if problem is not None:
            raise SpecMismatchError(f"input {item.field!r}: {problem}")
        if item.tensor.startswith("_"):  # the spec allows it; a SavedModel input does not
            raise SpecMismatchError(
                f"input {item.field!r}: tensor {item.tensor!r} cannot name a SavedModel "
                "signature input (TensorFlow names them like its ops: no leading underscore)"
            )
        length = fixed_length(inputs[item.tensor])
        if length is not None and length < item.max_tokens:
            raise SpecMismatchError(
                f"input {item.field!r}: the model takes exactly {length} ids, fewer than the "
                f"spec's max_tokens {item.max_tokens} (a row would be cut short)"
            )
    outputs, names = model_outputs(model), output_names(model)
    for head in spec.heads:
        if head.output not in outputs:
            raise SpecMismatchError(
                f"head {head.field!r}: output {head.output!r} is not a model output "
                f"(outputs: {sorted(names)}){close_output_hint(head.output, names, spec)}"
                f"{rename_hint(head.output, names)}"
                f"{listed_outputs_hint(names)}"
            )
        if names.count(head.output) > 1:
            raise SpecMismatchError(
                f"head {head.field!r}: {names.count(head.output)} model outputs are named "
                f"{head.output!r} (one layer made them): name each with dict outputs, "
                "keras.Model(inputs, {'name': tensor, ...})"
            )
        if isinstance(head, TokenLabelsHead):
            item = spec.input(head.input_field)
            check_token_shape(head, item.max_tokens, fixed_length(inputs[item.tensor]), outputs)
        else:
            _check_shape(head, tuple(outputs[head.output].shape))
        problem = logits_problem(head, outputs[head.output])
        if problem is not None:
            raise SpecMismatchError(problem)
    # The signature holds the heads' outputs only. newuser11: a head left out of the spec by
    # mistake was exported without a word, and its answer field was simply never served.
    unserved = sorted(set(names) - {head.output for head in spec.heads})
    if unserved:
        LOGGER.warning(
            "model outputs %s have no head in the spec: they are left out of the exported "
            "signature and never served (add a head for each one to serve)",
            unserved,
        )
    for item in spec.inputs:
        rows = embedding_rows(model, inputs[item.tensor])
        if rows is not None and rows < item.vocab_size:
            raise SpecMismatchError(
                f"input {item.field!r}: vocab_size {item.vocab_size} exceeds the {rows} rows "
                f"of the Embedding it feeds"
            )
    problem = unservable_reason(spec, tokenizers)
    if problem is not None:
        raise SpecMismatchError(f"{problem}; the gateway would not route this version")


def _check_shape(head: HeadSpec, shape: tuple[int | None, ...]) -> None:
    width = head_width(head)
    if is_scalar(head):
        if shape[1:] not in ((), (1,), (None,)):
            raise SpecMismatchError(
                f"head {head.field!r} ({head.kind}): output {head.output!r} has shape {shape}; "
                f"a scalar head needs [batch] or [batch, 1]{scalar_width_hint(head, shape)}"
            )
        return
    if len(shape) != 2 or shape[-1] not in (width, None):
        # A [batch, length, n] output answers per token (a tagger): a token_labels head.
        per_token = (
            "; an output per token (token tagging) is a token_labels head: "
            "TokenLabelsHead(input_field=..., labels=[...])"
            if len(shape) == 3
            else ""
        )
        raise SpecMismatchError(
            f"head {head.field!r} ({head.kind}): output {head.output!r} has shape {shape}; "
            f"the spec needs [batch, {width}]{per_token}{scalar_width_hint(head, shape)}"
        )


def check_token_shape(
    head: TokenLabelsHead, max_tokens: int, length: int | None, outputs: Mapping[str, Any]
) -> None:
    """Raise :class:`SpecMismatchError` unless a token head's output is ``[batch, tokens,
    len(labels)]`` with one position per id of its input's row: ``tokens`` unknown, or, when
    known, the fixed ``length`` the model's input takes (if it has one) and at least
    ``max_tokens`` (the gateway reads a row's positions up to its length)."""
    shape = tuple(outputs[head.output].shape)
    where = f"head {head.field!r} (token_labels): output {head.output!r} has shape {shape}"
    if len(shape) != 3:
        raise SpecMismatchError(
            f"{where}; the spec needs one label distribution per token of input "
            f"{head.input_field!r}, [batch, tokens, {len(head.labels)}] (a Dense over the "
            "token features, without pooling them)"
        )
    if shape[2] not in (len(head.labels), None):
        raise SpecMismatchError(
            f"{where}; its last dimension must be len(labels) = {len(head.labels)}"
        )
    tokens = shape[1]
    if tokens is not None and (tokens != (length or tokens) or tokens < max_tokens):
        raise SpecMismatchError(
            f"{where}; its second dimension must be one per id of input "
            f"{head.input_field!r} (max_tokens {max_tokens}"
            + (f", the model takes {length})" if length else ")")
        )


def embedding_rows(model: keras.Model, tensor: Any) -> int | None:
    """Rows (``input_dim``) of the Embedding layer that takes ``tensor`` directly, if any.

    Looks at the functional graph's top level only (Keras 3 inbound nodes); an input that
    reaches its embedding through other operations or a nested model gives None.
    """
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Embedding):
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            if any(source is tensor for source in getattr(node, "input_tensors", [])):
                return int(layer.input_dim)
    return None
