"""Numbers read from text: only ASCII decimal digits within int64 (issue 8)."""

from __future__ import annotations

import json
import math

import pytest

from serving.numbers import (
    InexactFloat,
    json_fraction,
    json_integer,
    parse_bool_flag,
    parse_int_flag,
    parse_version,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1), ("00000123", 123), ("0", 0), ("9223372036854775807", 2**63 - 1),
     ("0" * 5000 + "7", 7), ("0" * 5000, 0)],
)  # fmt: skip
def test_versions(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    "text",
    ["99999999999999999999", "9223372036854775808", "²", "١٢٣", "1_000", " 12", "-1", "", "1.0",
     "9" * 5000],  # int() raised ValueError past 4300 digits: a 500 on the REST port
)  # fmt: skip
def test_not_versions(text):
    assert parse_version(text) is None


def test_int_flags():
    assert parse_int_flag("-5") == -5
    for text in ("²", "1_000", "99999999999999999999", "x"):
        with pytest.raises(ValueError):
            parse_int_flag(text)


def test_bool_flags():
    assert parse_bool_flag("true") and parse_bool_flag("1")
    assert not parse_bool_flag("false")
    with pytest.raises(ValueError):
        parse_bool_flag("maybe")


def test_grpc_channel_arguments():
    from serving.modelserver.grpc_server import parse_channel_arguments

    parsed = parse_channel_arguments("grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb")
    assert parsed == (("grpc.max_connection_age_ms", 2000), ("grpc.lb_policy_name", "grpclb"))
    assert parse_channel_arguments("a=-1,b=--1") == (("a", -1), ("b", "--1"))
    with pytest.raises(ValueError):
        parse_channel_arguments("novalue")


def test_version_dirs_follow_the_same_rule(tmp_path) -> None:
    from serving.contract import version_dirs, version_numbers

    for name in ("1", "00000123", "²", "99999999999999999999", "3a", "-4", "7"):
        (tmp_path / name).mkdir()
    (tmp_path / "9").write_text("a file is not a version")
    assert version_dirs(tmp_path) == {
        1: tmp_path / "1",
        7: tmp_path / "7",
        123: tmp_path / "00000123",
    }
    assert version_numbers(tmp_path) == [1, 7, 123]


def test_json_integer_keeps_a_number_of_thousands_of_digits_as_a_float() -> None:
    assert json_integer("-12") == -12 and isinstance(json_integer("12"), int)
    assert json_integer("9" * 5000) == math.inf
    assert json_integer("-" + "9" * 5000) == -math.inf
    assert json.loads("[" + "1" * 4301 + "]", parse_int=json_integer) == [math.inf]


@pytest.mark.parametrize(
    ("literal", "inexact"),
    [
        ("2.0", False),
        ("2e0", False),
        ("20000e-4", False),
        ("-0.0", False),
        ("0e-99999999999999999999999", False),
        ("2.5", False),  # not whole: a plain float
        ("1.9999999999999999999", True),
        ("2.0000000000000000001", True),
        ("1e-99999999999999999999999", True),  # reads as 0.0
        ("1e-400", True),
    ],
)
def test_json_fraction_marks_whole_floats_of_unwhole_numbers(literal: str, inexact: bool) -> None:
    value = json_fraction(literal)
    assert value == float(literal)
    assert isinstance(value, InexactFloat) is inexact
