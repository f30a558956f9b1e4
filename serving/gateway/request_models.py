"""Pydantic request and response models generated from a version's serving spec.

Each input becomes a strictly typed field (``str`` for ``text``, ``list[str]`` for ``texts``);
unknown fields are errors. Size limits are the smaller of the spec's (``max_chars``,
``max_items``) and the gateway's settings; a value above one fails as a ``limit_exceeded``
error naming the limit that applied, and the limit is written into the JSON schema
(``maxLength``, ``maxItems``, ``maximum``). A text from which the input's tokenizer makes no
token from a letter or digit (whitespace, zero-width, control characters or symbols only), or
whose cut leaves the model no word, fails as ``no_words`` (:mod:`serving.gateway.word_rules`);
the schema gives the first rule as ``pattern``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    create_model,
)
from pydantic_core import PydanticCustomError
from tokenizers import Tokenizer

from serving.gateway.answers import answer_model
from serving.gateway.errors import echo
from serving.gateway.settings import GatewaySettings
from serving.gateway.word_rules import joined_words, words
from serving.numbers import InexactFloat
from serving.spec import HeadSpec, ServingSpec, TextInput, TextsInput

LIMIT_ERROR = "limit_exceeded"
# serving.words.WORD_PATTERN in JSON Schema's regex dialect (ECMA-262): there "\w" is ASCII
# only, so the Unicode letter/digit classes are spelt out.
WORD_SCHEMA_PATTERN = r"[\p{L}\p{N}]"


class ModelRef(BaseModel):
    """The model version that produced an answer."""

    name: str
    version: int


class StrictBody(BaseModel):
    """Request bodies: unknown fields are 422, types are not coerced (``"1"`` is no int)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _valid_unicode(text: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); the tokenizer cannot encode them.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("text contains invalid Unicode (a lone surrogate)") from error
    return text


def limit(name: str, value: int, measure: Callable[[Any], int] = len) -> AfterValidator:
    """A validator failing with ``limit_exceeded`` (ctx: name, limit) above ``value``."""
    return AfterValidator(limit_check(name, value, measure))


def limit_check(name: str, value: int, measure: Callable[[Any], int] = len) -> Callable[[Any], Any]:
    """The check of :func:`limit`: raise ``limit_exceeded`` above ``value``, else pass through."""

    def check(item: Any) -> Any:
        actual = measure(item)
        if actual > value:
            raise PydanticCustomError(
                LIMIT_ERROR,
                "{actual} exceeds the limit {name}={limit}",
                # The client's own number, echoed cut (a top_k of 1e308 has 309 digits).
                {"actual": echo(str(actual)), "name": name, "limit": value},
            )
        return item

    return check


def binding(spec_name: str, spec_value: int, setting: str, setting_value: int) -> tuple[str, int]:
    """The limit that applies (the smaller one) and its name; the setting wins ties."""
    return (setting, setting_value) if setting_value <= spec_value else (spec_name, spec_value)


def text_type(
    max_chars: tuple[str, int], tokenizer: Tokenizer, item: TextInput | None = None
) -> Any:
    """A string of 1 to the limit's characters, valid Unicode, with a word for the tokenizer.

    ``item``: the text input the string is, whose cut must keep a word and whose encoding
    validation may keep (:func:`serving.gateway.word_rules.words`).
    """
    name, value = max_chars
    return Annotated[
        str,
        Field(
            min_length=1,
            # Documentation only (the validator below applies the rule, with the tokenizer).
            json_schema_extra={"maxLength": value, "pattern": WORD_SCHEMA_PATTERN},
        ),
        AfterValidator(_valid_unicode),
        limit(name, value),
        words(tokenizer, item),
    ]


def list_type(item: Any, max_items: tuple[str, int]) -> Any:
    """A non-empty list of ``item`` with at most the limit's items."""
    name, value = max_items
    check = limit_check(name, value)

    def before_items(raw: Any) -> Any:
        # Count first: a list far over the limit must not have each of its items validated.
        return check(raw) if isinstance(raw, list) else raw

    return Annotated[
        list[item],
        BeforeValidator(before_items),
        Field(min_length=1, json_schema_extra={"maxItems": value}),
    ]


def _integral(value: Any) -> Any:
    # JSON has one number type: 2.0 is the number 2, an integer to JSON Schema (so the
    # OpenAPI document's "integer" includes it). true, "3", 2.5 and 1.9999999999999999999
    # (read as 2.0, an InexactFloat) stay refused (strict).
    if isinstance(value, float) and value.is_integer() and not isinstance(value, InexactFloat):
        return int(value)
    return value


def top_k_type(settings: GatewaySettings) -> Any:
    """A positive JSON integer (2.0 counts, true and "3" do not) up to ``max_top_k``."""
    return Annotated[
        int,
        Field(ge=1, json_schema_extra={"maximum": settings.max_top_k}),
        BeforeValidator(_integral),  # after Field: the schema keeps "minimum"
        limit("max_top_k", settings.max_top_k, int),
    ]


def _input_type(
    item: TextInput | TextsInput, settings: GatewaySettings, tokenizer: Tokenizer
) -> Any:
    chars = binding("max_chars", item.max_chars, "max_chars_per_text", settings.max_chars_per_text)
    if isinstance(item, TextsInput):
        items = binding(
            "max_items", item.max_items, "max_posts_per_profile", settings.max_posts_per_profile
        )
        texts = list_type(text_type(chars, tokenizer), items)
        return Annotated[texts, joined_words(item, tokenizer)]
    return text_type(chars, tokenizer, item)


def schema_name(model: str, suffix: str) -> str:
    """``qa`` + ``Instance`` -> ``QaInstance`` (an OpenAPI component name)."""
    parts = re.split(r"[^A-Za-z0-9]+", model)
    return "".join(part[:1].upper() + part[1:] for part in parts if part) + suffix


def _answer_type(model: str, head: HeadSpec) -> Any:
    """The head's answer model, with its labels as the enum of ``label``, of ``labels``' items
    (multilabel) and of ``probabilities``' keys (documentation only; a multilabel head's schema
    was the shared one, naming none of its labels)."""
    base = answer_model(head)
    labels: list[JsonValue] = list(getattr(head, "labels", ()))
    if not labels or head.kind == "token_labels":  # one shared answer schema
        return base
    fields: dict[str, Any] = {}
    if head.kind == "multilabel":
        names: dict[str, JsonValue] = {"type": "string", "enum": labels}
        fields["labels"] = (list[str], Field(json_schema_extra={"items": names}))
    else:
        fields["label"] = (str, Field(json_schema_extra={"enum": labels}))
    if "probabilities" in base.model_fields:
        keys: dict[str, JsonValue] = {"propertyNames": {"enum": labels}}
        fields["probabilities"] = (dict[str, float], Field(json_schema_extra=keys))
    name = schema_name(model, schema_name(head.field, "Answer"))
    return create_model(name, __base__=base, **fields)


@dataclass(frozen=True)
class RequestModels:
    """The generated models of one version: instance, request bodies, answers, responses.

    ``renamed``: attribute -> spec field, for the input fields pydantic cannot take as
    attribute names (:func:`attribute_names`); they are validated under their own name.
    """

    instance: type[StrictBody]
    single: type[StrictBody]
    batch: type[StrictBody]
    outputs: type[BaseModel]
    single_response: type[BaseModel]
    batch_response: type[BaseModel]
    renamed: Mapping[str, str] = field(default_factory=dict)

    def values(self, instance: BaseModel) -> dict[str, Any]:
        """A validated instance's values by spec field (what the runtime encodes)."""
        if not self.renamed:
            return dict(instance)
        return {self.renamed.get(name, name): value for name, value in instance}


def attribute_names(fields: Iterable[str]) -> dict[str, str]:
    """Spec field -> the attribute its generated pydantic field has (the field is its alias).

    A spec field is any identifier (``serving.spec.NAME_PATTERN``), but pydantic cannot take
    one with a leading underscore (a private attribute) or ``model_config`` (the model's
    configuration), and one that names another ``BaseModel`` attribute (``schema``, ``json``,
    ``copy``) shadows it: those get an attribute of their own, ``renamed_<n>``.
    """
    names = list(fields)
    found: dict[str, str] = {}
    for index, name in enumerate(names):
        if not name.startswith("_") and not hasattr(BaseModel, name):
            found[name] = name
            continue
        attribute = f"renamed_{index}"
        while attribute in names or hasattr(BaseModel, attribute):
            attribute += "_"
        found[name] = attribute
    return found


def build_models(
    model: str, spec: ServingSpec, settings: GatewaySettings, tokenizers: Mapping[str, Tokenizer]
) -> RequestModels:
    """Generate the request and response models of a spec (see the module docstring).

    ``tokenizers`` maps the spec's tokenizer file names to the loaded tokenizers: a text
    without a word for its input's tokenizer fails validation (``no_words``).
    """
    inputs = attribute_names(item.field for item in spec.inputs)
    fields: dict[str, Any] = {
        inputs[item.field]: (
            _input_type(item, settings, tokenizers[item.tokenizer]),
            # The spec's example: what "Try it out" in /docs fills in, on every endpoint.
            Field(
                alias=item.field,
                description=item.description or None,
                examples=[spec.example[item.field]],
            ),
        )
        for item in spec.inputs
    }
    instance = create_model(
        schema_name(model, "Instance"),
        __base__=StrictBody,
        __doc__=f"One instance of {spec.title}.",
        **fields,
    )
    top_k = (top_k_type(settings) | None, Field(default=None, description="Candidates per head."))
    batch_limit = ("max_instances_per_batch", settings.max_instances_per_batch)
    single = create_model(
        schema_name(model, "PredictRequest"),
        __base__=StrictBody,
        __doc__="One instance: {'inputs': {...}}.",
        inputs=(instance, Field(examples=[spec.example])),
        top_k=top_k,
    )
    batch = create_model(
        schema_name(model, "BatchPredictRequest"),
        __base__=StrictBody,
        __doc__="Several instances answered with one model call: {'instances': [...]}.",
        instances=(list_type(instance, batch_limit), ...),
        top_k=top_k,
    )
    heads = attribute_names(head.field for head in spec.heads)
    answers: dict[str, Any] = {
        heads[head.field]: (
            _answer_type(model, head),
            Field(alias=head.field, description=head.description or None),
        )
        for head in spec.heads
    }
    outputs = create_model(schema_name(model, "Outputs"), **answers)
    single_response = create_model(
        schema_name(model, "PredictResponse"), outputs=(outputs, ...), model=(ModelRef, ...)
    )
    batch_response = create_model(
        schema_name(model, "BatchPredictResponse"),
        predictions=(list[outputs], ...),  # type: ignore[valid-type]
        model=(ModelRef, ...),
    )
    renamed = {attribute: name for name, attribute in inputs.items() if attribute != name}
    return RequestModels(instance, single, batch, outputs, single_response, batch_response, renamed)
