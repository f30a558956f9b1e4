"""The top README names each way to pin a version on the routes that take it."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def test_query_pins_are_named_with_the_routes_that_read_them() -> None:
    # Found by the new-user trial (newuser11): "TF Serving's URL scheme, POST
    # /v1/models/NAME:predict ... The API (batches with instances, ?version=N, ?label=stable"
    # read as ":predict?version=1", which is a 422 unexpected_parameter (the gateway README's
    # rule): only the alias routes and the architecture files read these keys.
    text = " ".join(README.read_text(encoding="utf-8").split())
    for sentence in re.split(r"(?<=[.:])\s+(?=[A-Z`])", text):
        if "?version=" in sentence or "?label=" in sentence:
            assert "/v1/qa" in sentence, sentence
            assert "/versions/N:predict" in sentence, sentence
