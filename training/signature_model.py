"""Serve a model you have only as a SavedModel: its signature as a functional Keras model.

``export_for_serving`` takes a Keras model. A SavedModel written by Keras 3's
``model.export(path)`` or by ``tf.saved_model.save(model, path)`` is loaded with
``keras.layers.TFSMLayer``, but that layer calls its endpoint with one positional argument,
and a SavedModel's signatures take keyword arguments only: called on a signature
(``serving_default``, the only endpoint ``tf.saved_model.save`` of a Keras 3 model writes)
it failed with ``TypeError: ... takes 0 positional arguments, got 1``. Here the signature is
called with its keywords, and each of them becomes a named ``keras.Input``.

``tf.saved_model.save`` names a Keras 3 model's signature inputs ``inputs``, ``inputs_1``, ...
(the ``model.export`` ones keep the Keras input names): ``tensors=`` renames them to the spec's
input tensors, and :func:`signature_inputs` lists them with their shapes and dtypes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf


class _SignatureLayer(keras.layers.TFSMLayer):  # type: ignore[misc]
    """``TFSMLayer`` calling its endpoint with keyword arguments, as signatures require."""

    def __init__(self, path: str, call_endpoint: str) -> None:
        super().__init__(path, call_endpoint=call_endpoint)
        # TFSMLayer takes an attribute of that name before the signature: a version written
        # by export_for_serving has a ``serving_default`` function taking one positional
        # ``inputs_0``, so re-exporting a served version failed with Keras's "Could not
        # automatically infer the output shape" (newuser9). The signature is what
        # signature_inputs describes and what TF Serving calls.
        self.call_endpoint_fn = self._reloaded_obj.signatures[call_endpoint]

    def call(self, inputs: Mapping[str, Any], training: bool = False) -> Any:
        del training  # a serving signature has no training mode
        return self.call_endpoint_fn(**inputs)


def signature_inputs(path: str | Path, signature: str = "serving_default") -> dict[str, str]:
    """Each keyword argument of a SavedModel's signature (sorted), as ``"int32 [None, None]"``.

    Raises:
        ValueError: the SavedModel has no such signature (the message lists those it has), or
            ``path`` is a file (a ``.keras`` model: ``keras.models.load_model`` reads it).
    """
    return _described(_signature(path, signature).structured_input_signature[1])


def signature_model(
    path: str | Path,
    signature: str = "serving_default",
    tensors: Mapping[str, str] | None = None,
) -> keras.Model:
    """The SavedModel's ``signature`` as a functional model that ``export_for_serving`` takes.

    Args:
        path: the SavedModel folder (``model.export(path)``, ``tf.saved_model.save``).
        signature: the signature to serve (``model.export`` also writes ``serving_default``).
        tensors: signature argument -> the spec's input tensor (``{"inputs": "title_ids",
            "inputs_1": "body_ids"}``); an argument not given keeps its name.

    Returns:
        A model whose inputs are keyed and named by the (renamed) arguments, each a
        ``[batch, length]`` tensor of the signature's dtype (int64 takes the served int32 ids),
        and whose outputs are the signature's, keyed and named as the SavedModel names them
        (the heads' ``output``s). Its weights are the SavedModel's variables.

    Raises:
        ValueError: ``path`` is a file, no such signature, a ``tensors`` key that is no
            argument of it, two arguments given one tensor name, or an argument that is no
            ``[batch, length]`` id matrix (each message lists the signature's arguments with
            their shapes and dtypes).
    """
    arguments = _signature(path, signature).structured_input_signature[1]
    listed = ", ".join(f"{name}: {text}" for name, text in _described(arguments).items())
    renames = dict(tensors or {})
    unknown = sorted(set(renames) - set(arguments))
    if unknown:
        raise ValueError(
            f"tensors= names {unknown}, which are no arguments of the signature {signature!r} "
            f"({listed}): key tensors= by these arguments"
        )
    named_twice = sorted(
        {
            tensor
            for tensor in renames.values()
            if [renames.get(a, a) for a in arguments].count(tensor) > 1
        }
    )
    if named_twice:  # Keras said only 'The name "title_ids" is used 2 times in the model'
        raise ValueError(
            f"tensors= gives {named_twice} to two arguments of the signature {signature!r} "
            f"({listed}; an argument not in tensors= keeps its name): give each its own tensor"
        )
    inputs: dict[str, Any] = {}
    for name, spec in sorted(arguments.items()):
        if spec.shape.rank != 2 or not (spec.dtype.is_integer or spec.dtype.is_floating):
            raise ValueError(
                f"the signature {signature!r} takes {name} as {spec.dtype.name} "
                f"{spec.shape.as_list()}: only [batch, length] token-id matrices are served "
                f"({listed})"
            )
        tensor = renames.get(name, name)
        inputs[name] = keras.Input((spec.shape[1],), dtype=spec.dtype.name, name=tensor)
    layer = _SignatureLayer(str(path), call_endpoint=signature)
    outputs = layer(inputs)
    if not isinstance(outputs, Mapping):
        raise ValueError(f"the signature {signature!r} returns no named outputs")
    # Identity layers carry the signature's output names onto the model's outputs.
    named = {key: keras.layers.Identity(name=key)(value) for key, value in outputs.items()}
    return keras.Model({renames.get(key, key): value for key, value in inputs.items()}, named)


def _described(arguments: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: f"{spec.dtype.name} {spec.shape.as_list()}"
        for name, spec in sorted(arguments.items())
    }


def _signature(path: str | Path, signature: str) -> Any:
    if Path(path).is_file():  # TensorFlow said "SavedModel file does not exist at: m.keras/{...}"
        raise ValueError(
            f"{str(path)!r} is a file, not a SavedModel folder: a .keras or .h5 model is "
            "loaded with keras.models.load_model and given to export_for_serving as it is"
        )
    signatures = tf.saved_model.load(str(path)).signatures
    if signature not in signatures:
        raise ValueError(
            f"the SavedModel {str(path)!r} has no signature {signature!r}; it has "
            f"{sorted(signatures)}"
        )
    return signatures[signature]
