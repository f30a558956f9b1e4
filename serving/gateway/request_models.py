"""Pydantic request and response models generated from a version's serving spec.

Each input becomes a strictly typed field (``str`` for ``text``, ``list[str]`` for ``texts``);
unknown fields are errors. Size limits are the smaller of the spec's (``max_chars``,
``max_items``) and the gateway's settings; a value above one fails as a ``limit_exceeded``
error naming the limit that applied, and the limit is written into the JSON schema
(``maxLength``, ``maxItems``, ``maximum``). A text from which the input's tokenizer makes no
token from a letter or digit (whitespace, zero-width, control characters or symbols only) fails
as ``no_words``; the schema gives that rule as ``pattern``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
)
from pydantic_core import PydanticCustomError
from tokenizers import Tokenizer

from serving.encoding import Encodings, has_words, input_text, word_encoding
from serving.gateway.errors import echo
from serving.gateway.heads import answer_model
from serving.gateway.settings import GatewaySettings
from serving.spec import HeadSpec, ServingSpec, TextInput, TextsInput

LIMIT_ERROR = "limit_exceeded"
NO_WORDS_ERROR = "no_words"
# serving.encoding.WORD_PATTERN in JSON Schema's regex dialect (ECMA-262): there "\w" is ASCII
# only, so the Unicode letter/digit classes are spelt out.
WORD_SCHEMA_PATTERN = r"[\p{L}\p{N}]"
# Validation context key: an Encodings that the no_words check of a text input fills with
# the text's whole encoding, so the request's encoding does not tokenise it again.
ENCODINGS = "encodings"


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


def words(tokenizer: Tokenizer, keep: bool = False) -> AfterValidator:
    """A validator failing with ``no_words`` for a text the tokenizer makes no token from.

    The rule is :func:`serving.encoding.has_words` (a letter or digit the tokenizer reads; not
    only whitespace, zero-width, control characters or symbols); a text of unknown words
    passes and becomes [UNK] ids. With ``keep`` (a text that is one model input) and an
    :class:`~serving.encoding.Encodings` in the validation context under ``ENCODINGS``, the
    text is tokenised whole (:func:`serving.encoding.word_encoding`) and its encoding kept.
    """

    def check(text: str, info: ValidationInfo) -> str:
        context = info.context
        known = context.get(ENCODINGS) if keep and isinstance(context, dict) else None
        if isinstance(known, Encodings) and known.has(tokenizer, text):
            passed = True  # the same text in another field or instance of this request
        elif isinstance(known, Encodings):
            encoding = word_encoding(tokenizer, text)
            if encoding is not None:
                known.keep(tokenizer, text, encoding)
            passed = encoding is not None
        else:
            passed = has_words(tokenizer, text)
        if not passed:
            raise PydanticCustomError(
                NO_WORDS_ERROR,
                "the text has no word (no letter or digit the tokenizer reads)",
            )
        return text

    return AfterValidator(check)


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


def text_type(max_chars: tuple[str, int], tokenizer: Tokenizer, keep: bool = False) -> Any:
    """A string of 1 to the limit's characters, valid Unicode, with a word for the tokenizer.

    ``keep``: the string is a model input whose encoding validation may keep (:func:`words`).
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
        words(tokenizer, keep),
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
    # OpenAPI document's "integer" includes it). true, "3" and 2.5 stay refused (strict).
    if isinstance(value, float) and value.is_integer():
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
        if item.max_joined_chars is None:
            return texts
        return Annotated[texts, joined_words(item, tokenizer)]
    return text_type(chars, tokenizer, keep=True)


def joined_words(item: TextsInput, tokenizer: Tokenizer) -> AfterValidator:
    """``no_words`` for a list whose joined text, cut at ``max_joined_chars`` as the model
    reads it (:func:`serving.encoding.input_text`), has no word left: each item has one, but
    the cut may leave only the blanks or symbols of the first ones."""
    limit = item.max_joined_chars or 0
    separator = len(item.separator) + 2  # join_posts puts " [SEP] " between items

    def check(texts: list[str]) -> list[str]:
        if sum(map(len, texts)) + separator * (len(texts) - 1) <= limit:
            return texts  # nothing is cut: each item's own word is read
        if not has_words(tokenizer, input_text(item, texts)):
            raise PydanticCustomError(
                NO_WORDS_ERROR,
                "the texts have no word within the first {limit} characters the model reads "
                "(max_joined_chars)",
                {"limit": limit},
            )
        return texts

    return AfterValidator(check)


def schema_name(model: str, suffix: str) -> str:
    """``qa`` + ``Instance`` -> ``QaInstance`` (an OpenAPI component name)."""
    parts = re.split(r"[^A-Za-z0-9]+", model)
    return "".join(part[:1].upper() + part[1:] for part in parts if part) + suffix


def _answer_type(model: str, head: HeadSpec) -> Any:
    """The head's answer model, with its labels as the ``label`` enum (documentation only)."""
    base = answer_model(head)
    labels = list(getattr(head, "labels", ()))
    if not labels or head.kind == "multilabel":
        return base
    return create_model(
        schema_name(model, schema_name(head.field, "Answer")),
        __base__=base,
        label=(str, Field(json_schema_extra={"enum": labels})),
    )


@dataclass(frozen=True)
class RequestModels:
    """The generated models of one version: instance, request bodies, answers, responses."""

    instance: type[StrictBody]
    single: type[StrictBody]
    batch: type[StrictBody]
    outputs: type[BaseModel]
    single_response: type[BaseModel]
    batch_response: type[BaseModel]


def build_models(
    model: str, spec: ServingSpec, settings: GatewaySettings, tokenizers: Mapping[str, Tokenizer]
) -> RequestModels:
    """Generate the request and response models of a spec (see the module docstring).

    ``tokenizers`` maps the spec's tokenizer file names to the loaded tokenizers: a text
    without a word for its input's tokenizer fails validation (``no_words``).
    """
    fields: dict[str, Any] = {
        item.field: (
            _input_type(item, settings, tokenizers[item.tokenizer]),
            # The spec's example: what "Try it out" in /docs fills in, on every endpoint.
            Field(description=item.description or None, examples=[spec.example[item.field]]),
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
    answers: dict[str, Any] = {
        head.field: (_answer_type(model, head), Field(description=head.description or None))
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
    return RequestModels(instance, single, batch, outputs, single_response, batch_response)
