"""Serve a Keras model that tokenises with ``TextVectorization``: its tokenizer and its id part.

The gateway sends token ids made by the spec's ``tokenizer.json`` (``serving/spec.py``), so a
model whose input is raw strings is refused by the export. :func:`text_vectorization_tokenizer`
writes the layer's vocabulary and rules as a ``tokenizers`` tokenizer that gives the same ids,
and :func:`ids_model` is the rest of the model, from the layer's ids to its outputs (the same
layers and weights), which ``export_for_serving`` takes.

The rules are those of Keras 3's ``TextVectorization`` (``keras/src/layers/preprocessing/
text_vectorization.py``): ``lower`` is ``tf.strings.lower``, which lowercases ASCII letters
only (``É`` stays); ``strip_punctuation`` removes the ASCII punctuation of
``DEFAULT_STRIP_REGEX``; ``whitespace`` splits at runs of ASCII whitespace (a no-break space
is part of a word); id 0 is padding and 1 the unknown token ``[UNK]``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import keras
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel

# Keras 3's text_vectorization.DEFAULT_STRIP_REGEX and tf.strings.split's whitespace.
STRIP_REGEX = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
SPLIT_REGEX = r"[ \t\n\r\x0b\x0c]+"
_STANDARDIZE = {
    None: (),
    "lower": ("lower",),
    "strip_punctuation": ("strip",),
    "lower_and_strip_punctuation": ("lower", "strip"),
}


def text_vectorization_tokenizer(layer: Any) -> Tokenizer:
    """A tokenizer whose ``encode(text).ids`` are ``layer([text])``'s ids without its padding.

    Args:
        layer: an adapted ``keras.layers.TextVectorization`` with ``output_mode="int"``, a
            built-in ``standardize`` and ``split="whitespace"``.

    Returns:
        A ``WordLevel`` tokenizer over ``layer.get_vocabulary()`` (its size is the layer's
        ``vocabulary_size()``, the ``vocab_size`` of the spec's input; pad id 0).

    Raises:
        ValueError: an ``output_mode`` other than ``"int"``, ``ngrams``, or a ``standardize``
            or ``split`` that is a callable or ``"character"``: no tokenizer rule is known
            to give their ids.
    """
    config = layer.get_config()
    unsupported = [
        f"{key}={config[key]!r}"
        for key, fine in (
            ("output_mode", config["output_mode"] == "int"),
            ("ngrams", config["ngrams"] is None),
            ("split", config["split"] == "whitespace"),
            ("standardize", _hashable(config["standardize"]) in _STANDARDIZE),
        )
        if not fine
    ]
    if unsupported:
        raise ValueError(
            f"TextVectorization with {', '.join(unsupported)} has no tokenizer here (supported: "
            "output_mode='int', no ngrams, split='whitespace', a built-in standardize): "
            "train a tokenizers tokenizer instead (training.tokenization)"
        )
    vocabulary = [str(token) for token in layer.get_vocabulary()]
    tokenizer = Tokenizer(
        WordLevel({token: index for index, token in enumerate(vocabulary)}, unk_token="[UNK]")
    )
    steps: list[normalizers.Normalizer] = []
    for step in _STANDARDIZE[config["standardize"]]:
        if step == "lower":
            steps += [normalizers.Replace(upper, upper.lower()) for upper in string.ascii_uppercase]
        else:
            steps.append(normalizers.Replace(Regex(STRIP_REGEX), ""))
    if steps:
        tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(SPLIT_REGEX), behavior="removed")
    return tokenizer


def ids_model(model: keras.Model, layer: Any, tensor: str | Mapping[str, str]) -> keras.Model:
    """The part of a functional (or ``Sequential``) model after its ``TextVectorization``
    layer(s): from their ids to the model's outputs, sharing their layers and weights.

    Args:
        model: the model whose string inputs each feed one call of ``layer``.
        layer: its ``TextVectorization`` layer, or a list of them (a model with a layer per
            text input, such as a title's and a body's).
        tensor: the name of the new ids input (the spec's ``TextInput.tensor``) when the
            layer is called once; with several string inputs, each model input's name ->
            the name of its ids input (``{"title": "title_ids", "body": "body_ids"}``), also
            for one layer called on each of them.

    Returns:
        A model taking ``{tensor: int64 ids [batch, length]}`` per ids input (``length`` the
        layer's ``output_sequence_length``, or any) with the model's outputs.

    Raises:
        ValueError: a single ``tensor`` name for layers called more than once or never, or a
            mapping that names no string input fed to the layer(s) or leaves one out (each
            message says what to give).
    """
    layers = list(layer) if isinstance(layer, list | tuple) else [layer]
    nodes = [node for item in layers for node in getattr(item, "_inbound_nodes", [])]
    if isinstance(tensor, str):
        if len(nodes) != 1:
            raise ValueError(
                f"{', '.join(item.name for item in layers)} is called {len(nodes)} times; "
                "expected once for one tensor name: with several text inputs give tensor= "
                "as {model input name: ids tensor name}, e.g. "
                "{'title': 'title_ids', 'body': 'body_ids'}"
            )
        pairs = [(tensor, nodes[0].output_tensors[0])]
    else:
        pairs = _ids_per_input(model, nodes, tensor)
    # The same structure: dict, list or one tensor (a Sequential has no .output of its own).
    structure = model.outputs[0] if isinstance(model, keras.Sequential) else model.output
    rest = keras.Model([ids for _, ids in pairs], structure)
    given = [keras.Input(tuple(ids.shape[1:]), dtype=ids.dtype, name=name) for name, ids in pairs]
    outputs = rest(given)
    if not isinstance(outputs, dict):  # keyed by the original output names, as the spec's
        outputs = dict(zip(rest.output_names, keras.tree.flatten(outputs), strict=True))
    return keras.Model({name: item for (name, _), item in zip(pairs, given, strict=True)}, outputs)


def _ids_per_input(model: Any, nodes: list[Any], names: Mapping[str, str]) -> list[tuple[str, Any]]:
    """(ids input name, the layer call's ids) for each of the model's string inputs."""
    fed = {}
    for node in nodes:
        for source in node.input_tensors:
            fed[id(source)] = node.output_tensors[0]
    by_name = {item.name: item for item in model.inputs}
    strings = sorted(name for name, item in by_name.items() if item.dtype == "string")
    wrong = sorted(set(names) - {name for name in strings if id(by_name[name]) in fed})
    missing = sorted(set(strings) - set(names))
    if wrong or missing:
        raise ValueError(
            f"tensor= must map each string input of the model fed to the layer(s) to its ids "
            f"tensor name; the string inputs are {strings}"
            + (f"; {wrong} are none of them or feed no given layer" if wrong else "")
            + (f"; {missing} are not mapped" if missing else "")
        )
    return [(ids_name, fed[id(by_name[name])]) for name, ids_name in names.items()]


def _hashable(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else id(value)
