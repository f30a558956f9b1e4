"""Each head's answer schema in ``/openapi.json`` names the version's labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving.gateway.request_models import build_models
from serving.gateway.runtime import load_runtime
from serving.gateway.schemas import ALIAS_RESPONSES
from serving.gateway.settings import GatewaySettings
from serving.spec import BinaryHead, CategoricalHead, MultilabelHead, RegressionHead, ScoreHead

SETTINGS = GatewaySettings()


def _answers(tiny_repo: Path, heads: list[Any]) -> dict[str, dict[str, Any]]:
    """Each head field -> its answer's schema in the version's generated response models."""
    runtime = load_runtime(tiny_repo, "profile", 1, SETTINGS)
    spec = runtime.spec.model_copy(update={"heads": heads})
    schema = build_models("profile", spec, SETTINGS, runtime.tokenizers).outputs.model_json_schema()
    return {
        field: schema["$defs"][ref["$ref"].rsplit("/", 1)[1]]
        for field, ref in schema["properties"].items()
    }


def test_every_labelled_head_names_its_labels_in_its_answer_schema(tiny_repo: Path) -> None:
    # Found by newuser7: a multilabel head's answer was the shared MultilabelAnswer schema,
    # naming none of its labels (a categorical head's listed them as the `label` enum).
    heads = [
        MultilabelHead(output="t", field="tags", labels=["sports", "news"]),
        CategoricalHead(output="c", field="topic", labels=["a", "b", "c"]),
        BinaryHead(output="s", field="spam", labels=("ham", "spam")),
    ]
    answers = {field: schema["properties"] for field, schema in _answers(tiny_repo, heads).items()}
    tags, topic, spam = answers["tags"], answers["topic"], answers["spam"]
    assert tags["labels"]["items"] == {"type": "string", "enum": ["sports", "news"]}
    assert tags["probabilities"]["propertyNames"] == {"enum": ["sports", "news"]}
    assert topic["label"]["enum"] == ["a", "b", "c"]
    assert topic["probabilities"]["propertyNames"] == {"enum": ["a", "b", "c"]}
    assert spam["label"]["enum"] == ["ham", "spam"]


def test_a_unit_is_in_the_schema_exactly_when_the_spec_gives_one(tiny_repo: Path) -> None:
    # "unit" was `string | null`, not required, and answered "" for a head without one: now
    # it is required (non-empty) when the spec gives a unit and absent otherwise; a note or
    # description is a non-empty string when present, never null.
    heads = [
        RegressionHead(output="a", field="age", unit="years"),
        RegressionHead(output="w", field="weight"),
        ScoreHead(output="s", field="score"),
        CategoricalHead(output="c", field="topic", labels=["a", "b"]),
    ]
    answers = _answers(tiny_repo, heads)
    assert answers["age"]["properties"]["unit"] == {
        "minLength": 1,
        "title": "Unit",
        "type": "string",
    }
    assert answers["age"]["required"] == ["value", "unit"]
    assert "unit" not in answers["weight"]["properties"]
    assert "unit" not in answers["score"]["properties"]
    for field, key in (("age", "note"), ("topic", "description"), ("topic", "note")):
        shown = answers[field]["properties"][key]
        assert shown["type"] == "string" and "anyOf" not in shown and "default" not in shown


def test_a_key_an_answer_may_leave_out_is_never_documented_as_null(tiny_repo: Path) -> None:
    # Found by newuser10: a multilabel head's `candidates` (answered only with a top_k), the
    # qa alias's `evidence` and the profile alias's `age_band` were `X | null` with
    # "default": null in /openapi.json, though an answer leaves the key out and never holds
    # null (a client generated from the document checked for a null that never comes).
    heads = [MultilabelHead(output="t", field="tags", labels=["sports", "news"])]
    tags = _answers(tiny_repo, heads)["tags"]
    schemas = [tags] + [
        model.model_json_schema() for models in ALIAS_RESPONSES.values() for model in models
    ]
    for schema in schemas:
        assert "null" not in json.dumps(schema), schema
    assert tags["properties"]["candidates"]["type"] == "array"
    assert "candidates" not in tags["required"]
    qa, profile = (ALIAS_RESPONSES[name][0].model_json_schema() for name in ("qa", "profile"))
    assert "evidence" in qa["properties"] and "evidence" not in qa["required"]
    assert "age_band" in profile["properties"] and "age_band" not in profile["required"]
