"""``errors.echo``: client text fit to be echoed in an answer (cut, escaped)."""

from __future__ import annotations

import pytest

from serving.gateway.errors import MAX_ECHO_CHARS, echo


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qa", "qa"),
        ("", ""),
        ("x" * MAX_ECHO_CHARS, "x" * MAX_ECHO_CHARS),
        ("x" * (MAX_ECHO_CHARS + 1), "x" * MAX_ECHO_CHARS + "..."),
        ("a\nb\x00c\u200bd\u2028", "a\\nb\\x00c\\u200bd\\u2028"),
        ("lone \ud800", "lone \\ud800"),
        ("Zürich 東京", "Zürich 東京"),  # printable in any script: kept
    ],
)
def test_echo(text: str, expected: str) -> None:
    assert echo(text) == expected


def test_echo_cuts_before_escaping() -> None:
    # The cut counts the client's characters, so an escape is never split.
    assert echo("\n" * 100, limit=3) == "\\n\\n\\n..."
