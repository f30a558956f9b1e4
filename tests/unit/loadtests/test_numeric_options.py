"""Every numeric option of every loadtests command line takes only finite numbers: ``nan``
or ``inf`` is a one-line usage error naming the option, before anything starts."""

from __future__ import annotations

import argparse
import importlib
import math
from typing import Any

import pytest

# Each command-line module of loadtests/ but the locust ones (stepload, users, checks,
# served_models: importing locust patches the process with gevent; their options are
# run.py's step options, checked in test_run_options.py, or strings).
COMMANDS = [
    "batching_sweep",
    "bench_gateway",
    "gateway_cost",
    "make_samples",
    "modelserver_cost",
    "profile_call_cost",
    "profiling",
    "run",
    "slow_clients",
    "thread_cost",
    "window_memory",
    "worker_cost",
]


class CapturedParserError(Exception):
    """Raised in place of parsing: the command's parser, caught before it ran anything."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__()
        self.parser = parser


def command_parser(name: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    module = importlib.import_module(f"loadtests.{name}")

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        raise CapturedParserError(self)

    with monkeypatch.context() as patched:
        patched.setattr(argparse.ArgumentParser, "parse_args", capture)
        with pytest.raises(CapturedParserError) as caught:
            (getattr(module, "parse_args", None) or module.main)([])
    return caught.value.parser


def numeric(action: argparse.Action) -> bool:
    """Whether the option reads numbers (its type turns "1" into a number or numbers)."""
    if not action.option_strings or action.type is None or not callable(action.type):
        return False
    try:
        value = action.type("1")
    except (argparse.ArgumentTypeError, TypeError, ValueError):
        return False
    values = value if isinstance(value, list) else [value]
    return all(isinstance(item, (int, float)) for item in values)


def numeric_options() -> list[tuple[str, str]]:
    monkeypatch = pytest.MonkeyPatch()
    try:
        return [
            (name, action.option_strings[-1])
            for name in COMMANDS
            for action in command_parser(name, monkeypatch)._actions
            if numeric(action)
        ]
    finally:
        monkeypatch.undo()


OPTIONS = numeric_options()


def test_the_float_options_are_among_them() -> None:
    assert ("slow_clients", "--drip-seconds") in OPTIONS and ("run", "--step-seconds") in OPTIONS


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
@pytest.mark.parametrize(("name", "option"), OPTIONS)
def test_a_number_that_is_not_finite_is_a_usage_error(
    name: str,
    option: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # slow_clients' --drip-seconds nan and --timeout nan passed its "> 0" check (every
    # comparison with NaN is false): nan seconds between drips, requests without a deadline.
    parser = command_parser(name, monkeypatch)
    capsys.readouterr()
    try:
        parsed = parser.parse_args([f"{option}={value}"])  # "-inf" alone reads as an option
    except SystemExit as stopped:
        assert stopped.code == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]
        assert last.startswith(f"{parser.prog}: error: argument {option}"), last
        return
    # A parser that checks its values after parsing (parser.error) must refuse them there.
    number = getattr(parsed, option.lstrip("-").replace("-", "_"))
    assert math.isfinite(float(number)), f"{name} {option} {value} was accepted"
