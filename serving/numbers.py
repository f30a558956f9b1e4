"""Parse the numbers the server reads from text (folder names, URLs, flags, config).

Only ASCII decimal digits in int64 range count: ``str.isdigit`` and ``int`` accept far more
("²", Arabic-Indic digits, "1_000", " 12 "), and a number past int64 cannot be a TF Serving
version (its ``Int64Value``), so such text is rejected here rather than failing later.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

INT64_MAX = 2**63 - 1
DECIMAL = re.compile(r"[0-9]+", flags=re.ASCII)
SIGNED_DECIMAL = re.compile(r"-?[0-9]+", flags=re.ASCII)


def parse_version(text: str) -> int | None:
    """A version number (0 <= v <= 2**63-1) from ASCII digits, leading zeros allowed; else None."""
    if not DECIMAL.fullmatch(text):
        return None
    # int() refuses more than 4300 digits (a ValueError: the model server's REST answered a
    # 5000-digit version in its URL 500); more than 19 significant digits is past int64.
    digits = text.lstrip("0")
    if len(digits) > 19:
        return None
    value = int(digits or "0")
    return value if value <= INT64_MAX else None


def parse_int_flag(text: str) -> int:
    """A signed int64 flag value from ASCII digits; ``ValueError`` (argparse: usage) otherwise."""
    stripped = text.strip()
    if not SIGNED_DECIMAL.fullmatch(stripped):
        raise ValueError(f"not an integer: {text!r}")
    value = int(stripped)
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValueError(f"out of int64 range: {text!r}")
    return value


def parse_bool_flag(text: str) -> bool:
    """TF Serving's (absl) boolean flag spellings; ``ValueError`` for anything else."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "t", "yes", "y"):
        return True
    if lowered in ("0", "false", "f", "no", "n"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def json_integer(digits: str) -> int | float:
    """A JSON integer (json's ``parse_int``): an int, or for more digits than
    ``sys.get_int_max_str_digits()`` (4300; ``int`` refuses them, its conversion being
    quadratic) the float it rounds to, +-inf, as json reads ``1e400``.

    Such a number is valid JSON (RFC 8259 sets no size), so it reaches the field that holds
    it and is refused there by type or range, not as a body that is not JSON.
    """
    try:
        return int(digits)
    except ValueError:
        return float(digits)


class InexactFloat(float):
    """A JSON number with a fraction that rounds to a whole float: ``1.9999999999999999999``
    reads as ``2.0`` but is no integer, so a field taking JSON integers (``2.0`` counts, RFC
    8259 has one number type) must still refuse it."""


def json_fraction(literal: str) -> float:
    """A JSON number with a fraction or exponent (json's ``parse_float``): its float, an
    :class:`InexactFloat` when the float is whole but the written number is not.

    The exact check (``decimal``, linear in the literal's length) runs only for whole
    floats.
    """
    value = float(literal)
    if not value.is_integer():
        return value
    try:
        exact = Decimal(literal)
        whole = exact.is_zero() or exact == exact.to_integral_value()
    except InvalidOperation:
        # An exponent past decimal's range; only a negative one gives a whole float (0.0),
        # which the number is only when its digits are all zeros.
        whole = not any(digit in "123456789" for digit in re.split("[eE]", literal)[0])
    return value if whole else InexactFloat(value)
