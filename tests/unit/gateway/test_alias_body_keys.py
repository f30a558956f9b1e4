"""An alias body's own keys (qa's ``top_k``, the batch form's ``instances``) are never also a
model input's name.

Found by the adversarial repo pass 11: a qa model whose question input was named ``top_k``
was routed and got a ``/v1/qa`` body model whose ``top_k`` was the alias's integer, so
``{"article": ..., "top_k": 3}`` was a 500 (the input's text missing at encoding). Such a
model is answered on ``/v1/models/qa:predict`` only, as a model without the alias's heads.
"""

from __future__ import annotations

import json

import pytest

from serving.gateway.aliases import prepare_alias
from serving.gateway.errors import GatewayError
from serving.gateway.runtime import load_runtime
from serving.spec import SPEC_FILE
from tests.unit.gateway.conftest import RUNTIME_SETTINGS as SETTINGS
from tests.unit.gateway.conftest import copy_qa

ARTICLE = "Mary went to the kitchen."


@pytest.mark.parametrize("name", ["top_k", "instances"])
def test_a_qa_input_named_as_a_body_key_gives_no_alias(tiny_repo, tmp_path, name) -> None:
    assets = copy_qa(tiny_repo, tmp_path)
    spec = json.loads((assets / SPEC_FILE).read_text())
    question = next(item for item in spec["inputs"] if item["field"] == "question")
    question["field"] = name
    spec["example"][name] = spec["example"].pop("question")
    (assets / SPEC_FILE).write_text(json.dumps(spec))
    runtime = load_runtime(tmp_path, "qa", 1, SETTINGS)
    expected = f"its input {name!r} has the name of this endpoint's own {name!r} key"
    assert runtime.alias_problem == expected
    for body in ({"article": ARTICLE, name: 3}, {"article": ARTICLE, name: "Where is Mary?"}):
        with pytest.raises(GatewayError) as caught:
            prepare_alias(runtime, body)
        assert caught.value.status == 502
        assert "use POST /v1/models/qa:predict" in caught.value.message


def test_the_default_qa_inputs_give_the_alias(qa) -> None:
    assert qa.alias_problem is None
    prepared = prepare_alias(qa, {"article": ARTICLE, "question": "Where is Mary?", "top_k": 2})
    assert prepared.instances == [{"article": ARTICLE, "question": "Where is Mary?"}]
    assert prepared.top_ks == [2]
