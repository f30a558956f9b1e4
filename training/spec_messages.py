"""Messages of :mod:`training.spec_check`'s refusals that name the fix: a model output that
cannot be a spec name, a spec's input tensors that are not the model's inputs, a head that
ends in logits or in the other kind of probabilities (a softmax under a multilabel head)."""

from __future__ import annotations

import difflib
import re
from typing import Any

import keras

from serving.spec import HeadSpec, ServingSpec, is_valid_name
from serving.spec_outputs import ACTIVATIONS


def rename_hint(output: str, names: list[str]) -> str:
    """A spec output can only be an identifier (``serving.spec.NAME_PATTERN``): a model output
    named otherwise (a dict key ``spam-prob``, ``dense_1/Sigmoid:0``) could not be named in
    the spec at all, which the bare list of outputs did not say."""
    odd = [name for name in names if not is_valid_name(name)]
    if not odd:
        return ""
    close = difflib.get_close_matches(output, odd, n=1, cutoff=0.5)
    which = close[0] if close else odd[0]
    return (
        f"; {odd} cannot be spec names (identifiers only): re-key the model's outputs, "
        f"keras.Model(inputs, {{{output!r}: <the {which!r} tensor>, ...}})"
    )


def close_output_hint(output: str, names: list[str], spec: ServingSpec) -> str:
    """`` (did you mean 'tags'?)`` for a head output the model lacks, from the model outputs
    no other head reads, or "". newuser11: ``output="tag"`` for the model output ``tags`` was
    told the bare list, while a spec tensor's typo was given the closest input."""
    free = [name for name in names if name not in {head.output for head in spec.heads}]
    close = difflib.get_close_matches(output, free, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


# The names a SavedModel signature gives the outputs of a function returning a list or tuple
# (Keras 3's model.export or tf.saved_model.save of a model with list outputs).
LISTED_OUTPUT = re.compile(r"output_\d+")


def listed_outputs_hint(names: list[str]) -> str:
    """Outputs named ``output_0``, ``output_1``, ... came from a signature that returned a
    list: the Keras layer names (``topic``) are gone, which the bare list did not say, and
    its order is that of the model's ``outputs`` (``tf.nest.flatten`` of what ``call``
    returned, as TensorFlow numbers a signature's list outputs)."""
    if not names or not all(LISTED_OUTPUT.fullmatch(name) for name in names):
        return ""
    return (
        "; a SavedModel of a model with list outputs (Keras 3 model.export, "
        "tf.saved_model.save) names them output_0, output_1, ... in the order of the "
        "model's outputs: give these as the heads' output, or export the Keras model with "
        "dict outputs, keras.Model(inputs, {'topic': ..., ...}), to keep names"
    )


# The names Keras 3 gives inputs it creates itself (keras_tensor_3, input_layer_1).
KERAS_MADE_UP = re.compile(r"(keras_tensor|input_layer)(_\d+)?")


def inputs_mismatch(declared: list[str], inputs: list[str], integer: frozenset[str]) -> str:
    """Why the spec's input tensors are not the model's inputs, naming each side's odd ones.

    A model input left out of the spec whose dtype is an integer (in ``integer``: a category
    id such as a country's) is served as a text input whose tokenizer maps each value's name
    to its id; the message had said every other feature "cannot be served".

    A spec tensor the model lacks gets the closest model input as a hint: a new user's
    ``tensor="title"`` for the model input ``title_ids`` had been told only that
    ``['title_ids']`` were not in the spec, "whose inputs are texts only", as if the model
    took another feature.
    """
    missing = [name for name in declared if name not in inputs]
    extra = [name for name in inputs if name not in declared]
    text = f"the spec's input tensors {sorted(declared)} must be the model's inputs {inputs}"
    for name in missing:
        close = difflib.get_close_matches(name, extra, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        text += f"; the spec's tensor {name!r} is no model input{hint}"
    categories = [name for name in extra if name in integer]
    if categories and not missing:
        text += (
            f"; {categories} are not in the spec, whose inputs are texts: an integer feature "
            "(a category id) is served as a TextInput whose tokenizer maps each value's name "
            "to its id, tokenizers.models.WordLevel({'[PAD]': 0, '[UNK]': 1, 'fr': 2, ...}, "
            "unk_token='[UNK]'), with max_tokens its length (training/README.md, 'Serve your "
            "own model'); a float feature cannot be served, and an attention mask is computed "
            "inside the model from the ids"
        )
    elif extra and not missing:
        text += (
            f"; {extra} are not in the spec, whose inputs are texts only (a model that "
            "also takes other features, a number or an attention mask, cannot be served: "
            "compute a mask inside the model from the ids)"
        )
    elif extra:
        text += f"; the model inputs {extra} are not in the spec"
    made_up = [name for name in extra if KERAS_MADE_UP.fullmatch(name)]
    if missing and made_up:
        # A Sequential model fitted without a keras.Input gets an input named keras_tensor;
        # a spec naming that made-up name would break on the next build.
        return text + (
            f": {made_up[0]!r} is a name Keras made up (the model was built by fit or a call, "
            "without a keras.Input): name it by wrapping the model, "
            f"ids = keras.Input((None,), dtype='int32', name={missing[0]!r}); "
            f"keras.Model({{{missing[0]!r}: ids}}, {{<head output>: model(ids)}})"
        )
    return text + (
        ": a TextInput's tensor is the model input's name (keras.Input(name=...), or its key "
        "in a dict-input model)"
        if missing
        else ""
    )


def logits_problem(head: HeadSpec, tensor: Any) -> str | None:
    """Why the Keras layer that makes ``tensor`` (the head's output) gives logits where the
    head reads probabilities (``serving.spec_outputs.ACTIVATIONS``), or probabilities of the
    other kind (a softmax where sigmoids are read, or the reverse: :func:`_activation_problem`),
    or None.

    A layer with an ``activation`` (``Dense``, ``EinsumDense``, ``Conv1D``, ``Activation``;
    the layer a ``TimeDistributed`` wraps) left linear ends the model in logits, also when
    only reshaped after it (:func:`_value_source`). The export's
    example check sees only values: logits that happen to lie in [0, 1] for the example (a
    binary head's one logit of 0.3) were exported and answered as probabilities. Tensors
    without a Keras layer (a SavedModel's, a subclassed model's) are left to that check.
    """
    activation = ACTIVATIONS.get(head.kind)
    layer = _value_source(tensor)
    if activation is None or layer is None:
        return None
    inner = getattr(layer, "layer", layer)  # TimeDistributed(Dense(n)) activates in its layer
    if getattr(inner, "activation", None) is not keras.activations.linear:
        return _activation_problem(head, activation, layer, _activation_name(inner))
    return (
        f"{_made_by(head, layer)} without an activation: logits, not "
        f"probabilities (end the model with a {activation}: a model trained with "
        "from_logits=True outputs logits; keras.Model(inputs, "
        f"{{{head.output!r}: keras.layers.Activation({activation!r})(logits)}}))"
    )


def _made_by(head: HeadSpec, layer: Any) -> str:
    """``head topic (categorical): output topic_out is made by layer 'dense' (Dense)``: how
    each refusal of a head's activation begins."""
    return (
        f"head {head.field} ({head.kind}): output {head.output} is made by layer "
        f"{layer.name!r} ({type(layer).__name__})"
    )


# Activations whose values along the last axis sum to 1 (one distribution over the labels),
# and those that give each value on its own (independent probabilities).
# Prefixes: TensorFlow's own functions as activations are named so (tf.nn.softmax is
# softmax_v2).
_NORMALISING = ("softmax", "sparsemax")
_INDEPENDENT = ("sigmoid", "hard_sigmoid")


def _activation_name(layer: Any) -> str:
    """``softmax`` for ``Dense(n, activation="softmax")``, ``Activation("softmax")``, the
    ``Softmax`` layer and ``keras.ops.softmax`` alike (the last two have no activation)."""
    activation = getattr(layer, "activation", None)
    if activation is not None:
        return str(getattr(activation, "__name__", ""))
    return type(layer).__name__.lower()


def _activation_problem(head: HeadSpec, wanted: str, layer: Any, found: str) -> str | None:
    """Why a layer's activation ``found`` gives the wrong kind of probabilities for a head
    that reads ``wanted`` ones, or None.

    A softmax under a multilabel (or binary) head was exported: its labels' probabilities
    sum to 1, so two labels that both apply cannot both pass 0.5 (a softmax of one unit is
    always 1.0), and the example check only sees values in [0, 1]. The other way round, a
    sigmoid under a categorical or token head is refused by the example check only when the
    example's row does not sum to 1 (a confident model's may, and every unclear request then
    failed at the gateway's per-answer check): refused here from the graph as well.
    """
    if wanted == "sigmoid" and found.startswith(_NORMALISING):
        remedy = (
            "one unit's is always 1 (end the model with keras.layers.Dense(1, "
            "activation='sigmoid'); a 2-unit softmax is a categorical head: "
            "CategoricalHead(labels=[negative, positive]))"
            if head.kind == "binary"
            else f"a {head.kind} head reads an independent probability per label (end the "
            "model with a sigmoid, keras.layers.Dense(n, activation='sigmoid'), trained with "
            "binary_crossentropy; one label of several is a categorical head: "
            "CategoricalHead(labels=...))"
        )
        return (
            f"{_made_by(head, layer)} with a {found}, whose values sum to 1 "
            f"over the labels: {remedy}"
        )
    if wanted == "softmax" and found.startswith(_INDEPENDENT):
        return (
            f"{_made_by(head, layer)} with a {found}, independent "
            f"probabilities that need not sum to 1, where a {head.kind} head reads one "
            "distribution over its labels (end the model with a softmax; several labels at "
            "once are a multilabel head: MultilabelHead(labels=...))"
        )
    return None


# Operations that pass their one input's values on unchanged (reshaped, sliced, cast): the
# layer before them made the head's values (a Dense(1) squeezed to [batch]).
_SAME_VALUES = {
    "Cast",
    "Dropout",
    "ExpandDims",
    "Flatten",
    "GetItem",
    "Identity",
    "Reshape",
    "Squeeze",
}


def _value_source(tensor: Any) -> Any:
    """The Keras operation that computed ``tensor``'s values, past :data:`_SAME_VALUES`
    operations and into a functional or ``Sequential`` model called as a layer (the README's
    wrapping of a ``Sequential`` fitted without an input), or None (a tensor without Keras
    history)."""
    history = getattr(tensor, "_keras_history", None)
    while history is not None:
        operation = history.operation
        inner = _nested_output(operation, history.tensor_index)
        if inner is not None:
            history = getattr(inner, "_keras_history", None)
            continue
        nodes = getattr(operation, "_inbound_nodes", [])
        if type(operation).__name__ not in _SAME_VALUES or history.node_index >= len(nodes):
            return operation
        inputs = keras.tree.flatten(nodes[history.node_index].input_tensors)
        if len(inputs) != 1:
            return operation
        history = getattr(inputs[0], "_keras_history", None)
    return None


def _nested_output(operation: Any, index: int) -> Any:
    """Output ``index`` of a functional or ``Sequential`` model's own graph, or None (any other
    operation; a subclassed model has no graph to follow)."""
    if not isinstance(operation, keras.Model):
        return None
    try:
        outputs = keras.tree.flatten(operation.outputs)
    except (AttributeError, ValueError):  # subclassed, or a Sequential never built
        return None
    return outputs[index] if index < len(outputs) else None
