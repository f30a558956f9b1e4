"""The step-load options' rules, shared by ``python -m loadtests.run`` and the locustfile
``loadtests/stepload.py`` (no locust import: ``run`` checks them before starting locust), and
the finite-seconds types of the other loadtests command lines (``slow_clients``).

A bad value was no error before: ``--steps abc`` ended in a ValueError traceback inside locust,
and ``--step-seconds -1`` or ``nan``, ``--steps 0`` or a ``--step-warmup`` as long as a step
measured nothing, reported as "no request finished (server stuck or too slow?)".
"""

from __future__ import annotations

import argparse
import math


def base_url(text: str) -> str:
    """An argparse type: the gateway's ``http://`` or ``https://`` base URL (without a scheme
    every request failed in locust with ``No connection adapters were found``)."""
    scheme, _, rest = text.partition("://")
    if scheme not in ("http", "https") or not rest.strip("/"):
        raise argparse.ArgumentTypeError(
            f"must be the gateway's base URL such as http://127.0.0.1:8000, got {text!r}"
        )
    return text


def steps_text(text: str) -> str:
    """An argparse type: ``"1,4,16"`` (each a user count >= 1), returned normalised."""
    values = [value.strip() for value in str(text).split(",")]
    if not values or not all(value.isascii() and value.isdigit() for value in values):
        raise argparse.ArgumentTypeError(f"must be user counts like 1,4,16, got {text!r}")
    if any(int(value) < 1 for value in values):
        raise argparse.ArgumentTypeError(f"every step needs at least 1 user, got {text!r}")
    return ",".join(str(int(value)) for value in values)


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0 (``nan`` passed a ``> 0`` check made
    after parsing: every comparison with NaN is false)."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def warmup_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds >= 0."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def warmup_problem(seconds: float, warmup: float) -> str | None:
    """Why a step of ``seconds`` with ``warmup`` unmeasured seconds measures nothing, or None."""
    if warmup >= seconds:
        return (
            f"--step-warmup {warmup:g} leaves nothing of a --step-seconds {seconds:g} step to "
            "measure: give a warm-up shorter than a step"
        )
    return None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, got {text!r}")
    return value
