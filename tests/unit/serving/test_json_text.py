"""The one lone-surrogate rule both servers read JSON strings by."""

from __future__ import annotations

import json

import pytest

from serving.json_text import has_lone_surrogate


@pytest.mark.parametrize(
    ("document", "lone"),
    [
        ('"plain"', False),
        ('"caf\\u00e9"', False),
        ('"\\ud83d\\ude00"', False),  # a valid pair: one character once parsed
        ('"\\ud800"', True),
        ('"a\\udfffb"', True),
        ('"\\ude00\\ud83d"', True),  # a pair in the wrong order is two lone halves
    ],
)
def test_a_lone_surrogate_is_found_after_parsing(document: str, lone: bool) -> None:
    assert has_lone_surrogate(json.loads(document)) is lone
