"""Sequential and subclassed Keras models as functional ones: what the export checks and writes.

The export reads a model's inputs and outputs by name (``training.spec_check``) and calls it on
a dict keyed by the spec's input tensors (``training.saved_model``): only a functional model
has named symbolic inputs and outputs, so the other two forms are turned into one first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from serving.spec import ServingSpec
from training.spec_check import SpecMismatchError


def functional(model: Any, spec: ServingSpec) -> Any:
    """The model as a functional model (same layers and weights) whose inputs and outputs have
    names: a ``keras.Sequential`` model as the functional model of its graph, a subclassed
    model (``class M(keras.Model)`` with its own ``call``) called on the spec's inputs
    (:func:`_subclassed`); a functional model as it is.

    Raises :class:`SpecMismatchError` for a Sequential model without a ``keras.Input`` (it
    has no inputs to serve until it is called) and for a subclassed model that cannot be
    called on the spec's inputs or whose outputs cannot be told apart.
    """
    if not isinstance(model, keras.Model):
        return model  # export_for_serving's TypeError names it
    if not isinstance(model, keras.Sequential):
        # Only functional models have symbolic inputs: a subclassed one had none, and the
        # export stopped with AttributeError "The layer m has never been called".
        return model if hasattr(model, "inputs") else _subclassed(model, spec)
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as error:
        raise SpecMismatchError(
            f"the Sequential model {model.name!r} has no inputs yet: start it with "
            "keras.Input((None,), dtype='int32', name=<the spec's input tensor>)"
        ) from error
    return keras.Model(inputs, outputs, name=model.name)


def _subclassed(model: keras.Model, spec: ServingSpec) -> keras.Model:
    """A subclassed model wrapped in a functional one: called on a dict of int32
    ``[batch, length]`` inputs keyed by the spec's input tensors (or, with one input, on its
    tensor alone, as ``model(ids)``: first the way it was built, by ``fit`` or a call); its
    outputs named by its dict's keys, or, when it
    returns one tensor and the spec has one head, by that head's output."""
    inputs = {
        item.tensor: keras.Input((None,), dtype="int32", name=item.tensor) for item in spec.inputs
    }
    calls: list[Any] = [inputs] + ([next(iter(inputs.values()))] if len(inputs) == 1 else [])
    # A trained model was built on the structure it takes (its build config): a call with
    # another one first would fail and leave that structure recorded, breaking the export.
    built = (model.get_build_config() or {}).get("input_shape")
    if built is not None and not isinstance(built, Mapping):
        calls.reverse()
    errors: list[str] = []
    for given in calls:
        try:
            outputs = model(given, training=False)
            break
        except Exception as error:  # a user's call(): any exception means "not this way"
            errors.append(f"{type(error).__name__}: {str(error)[:200]}")
    else:
        raise SpecMismatchError(
            f"the subclassed model {model.name!r} cannot be called on the spec's inputs (a "
            f"dict of int32 [batch, length] ids keyed {sorted(inputs)}"
            + (", or that one tensor" if len(inputs) == 1 else "")
            + f"): {'; '.join(errors)}"
        )
    if not isinstance(outputs, Mapping):
        if not keras.tree.is_nested(outputs) and len(spec.heads) == 1:
            outputs = {spec.heads[0].output: outputs}
        else:
            raise SpecMismatchError(
                f"the subclassed model {model.name!r} returns unnamed outputs: return a dict "
                f"keyed by the heads' outputs {[head.output for head in spec.heads]}"
            )
    return keras.Model(inputs, dict(outputs), name=model.name)
