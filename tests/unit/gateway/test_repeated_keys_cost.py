"""Reporting repeated keys costs work linear in the body (hostile input, resource pass).

Before: a body nested 900 deep holding 150,000 arrays and one repeated key took 10 s of CPU
and 1 GB to answer (each value's path copied per value), and 45,000 distinct keys each
given twice took 12 s (a list searched per name). Bounds are asserted as allocations and
comparisons, never as time.
"""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest

from serving.gateway.errors import GatewayError
from serving.gateway.strict_json import (
    MAX_REPEATED_DETAILS,
    MAX_REPEATED_LOC_ITEMS,
    parse_body,
    repeated_names,
)


def _refused(body: bytes) -> list[dict[str, Any]]:
    with pytest.raises(GatewayError) as caught:
        parse_body(body)
    assert caught.value.status == 422
    return caught.value.detail


def test_a_deep_wide_body_with_one_repeat_is_reported_in_memory_linear_in_its_size() -> None:
    depth, width = 300, 20_000
    nested = b"[" * depth + b",".join([b"[0]"] * width) + b"]" * depth
    body = b'{"a": 1, "a": 2, "x": ' + nested + b"}"
    tracemalloc.start()
    try:
        detail = _refused(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [item["loc"] for item in detail] == [["body", "a"]]
    # The parsed body is ~100 bytes per "[0]" (7 MB peak here); a path per value cost depth
    # times that (57 MB here, 1 GB at depth 900 and 150,000 arrays).
    assert peak < 150 * len(body), (peak, len(body))


def test_a_repeat_deep_in_arrays_is_located() -> None:
    body = b'{"x": [0, [[{"b": 1}], [{"a": 1, "a": 2}]]]}'
    (detail,) = _refused(body)
    assert detail["loc"] == ["body", "x", 1, 1, 0, "a"]


class _CountedName(str):
    """A key that counts how often it is compared for equality."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        _CountedName.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_many_distinct_repeated_names_cost_a_bounded_number_of_comparisons() -> None:
    # Distinct objects per occurrence, as the parser makes them: no identity shortcut.
    count = 2_000
    pairs = [(_CountedName(f"k{i}"), 0) for i in range(count) for _ in range(2)]
    _CountedName.compared = 0
    names = repeated_names(pairs)
    assert names == [f"k{i}" for i in range(count)]
    assert _CountedName.compared <= 4 * len(pairs)  # a list search per name: ~count**2 / 2


def test_many_repeated_names_are_reported_up_to_the_cap() -> None:
    members = b",".join(b'"%d": 0, "%d": 1' % (i, i) for i in range(5_000))
    detail = _refused(b"{" + members + b"}")
    assert [item["loc"] for item in detail] == [
        ["body", str(i)] for i in range(MAX_REPEATED_DETAILS)
    ]


def test_repeats_deep_in_arrays_give_an_answer_no_larger_than_the_body() -> None:
    # 20 repeats 850 arrays deep: a loc of 852 entries each made a 2 kB body's answer 36 kB.
    depth = 850
    repeats = b",".join(b'{"k%d": 0, "k%d": 1}' % (i, i) for i in range(MAX_REPEATED_DETAILS))
    body = b'{"x": ' + b"[" * depth + repeats + b"]" * depth + b"}"
    detail = _refused(body)
    first = ["body", "x", *[0] * depth, "k0"]
    assert detail[0]["loc"] == first  # the first repeat is always named, its path whole
    assert sum(len(item["loc"]) for item in detail[1:]) <= MAX_REPEATED_LOC_ITEMS
    assert len(json.dumps(detail)) < 2 * len(body)


def test_shallow_repeats_are_all_named_within_the_loc_budget() -> None:
    objects = b",".join(b'{"k": 0, "k": 1}' for _ in range(MAX_REPEATED_DETAILS))
    detail = _refused(b'{"instances": [' + objects + b"]}")
    assert [item["loc"] for item in detail] == [
        ["body", "instances", i, "k"] for i in range(MAX_REPEATED_DETAILS)
    ]
