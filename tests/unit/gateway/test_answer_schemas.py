"""Each head's answer schema in ``/openapi.json`` names the version's labels."""

from __future__ import annotations

from pathlib import Path

from serving.gateway.request_models import build_models
from serving.gateway.runtime import load_runtime
from serving.gateway.settings import GatewaySettings
from serving.spec import BinaryHead, CategoricalHead, MultilabelHead

SETTINGS = GatewaySettings()


def test_every_labelled_head_names_its_labels_in_its_answer_schema(tiny_repo: Path) -> None:
    # Found by newuser7: a multilabel head's answer was the shared MultilabelAnswer schema,
    # naming none of its labels (a categorical head's listed them as the `label` enum).
    runtime = load_runtime(tiny_repo, "profile", 1, SETTINGS)
    heads = [
        MultilabelHead(output="t", field="tags", labels=["sports", "news"]),
        CategoricalHead(output="c", field="topic", labels=["a", "b", "c"]),
        BinaryHead(output="s", field="spam", labels=("ham", "spam")),
    ]
    spec = runtime.spec.model_copy(update={"heads": heads})
    schema = build_models("profile", spec, SETTINGS, runtime.tokenizers).outputs.model_json_schema()
    answers = {
        field: schema["$defs"][ref["$ref"].rsplit("/", 1)[1]]["properties"]
        for field, ref in schema["properties"].items()
    }
    tags, topic, spam = answers["tags"], answers["topic"], answers["spam"]
    assert tags["labels"]["items"] == {"type": "string", "enum": ["sports", "news"]}
    assert tags["probabilities"]["propertyNames"] == {"enum": ["sports", "news"]}
    assert topic["label"]["enum"] == ["a", "b", "c"]
    assert topic["probabilities"]["propertyNames"] == {"enum": ["a", "b", "c"]}
    assert spam["label"]["enum"] == ["ham", "spam"]
