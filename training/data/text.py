"""The lines of the line-based dataset files (bAbI, STS Benchmark, SICK, MRPC), decoded alike,
and their score fields, parsed alike."""

from __future__ import annotations

import re
from pathlib import Path

from training.data.errors import DataError

SCORE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def text_lines(path: Path) -> list[str]:
    """The lines of a text file, each decoded as UTF-8; DataError naming it if it cannot be read.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` only (``bytes.splitlines``): ``str.splitlines``
    also ends them at form feeds, ``\\x1c``-``\\x1e``, U+0085, U+2028 and U+2029, which can be
    inside a sentence, and cut such a row into two bad lines. A UTF-8 byte-order mark (Windows
    editors write one; MRPC starts with one) is dropped. Bytes that are not UTF-8 become U+FFFD,
    so that the readers count the line as bad instead of stopping the run.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:  # unreadable (permissions, a device): a message, not a traceback
        raise DataError(f"cannot read {path}: {error.strerror or error}") from error
    return [decode_line(line) for line in raw.splitlines()]


def decode_line(raw: bytes) -> str:
    """One line as text: UTF-8 without a leading byte-order mark, bad bytes as U+FFFD."""
    return raw.decode("utf-8-sig", errors="replace")


def parse_score(text: str) -> float:
    """A score field as a float: an ASCII decimal number such as ``3.8``, ``4``, ``.5``, ``1e0``.

    Raises ValueError for anything else. ``float`` alone also reads ``"0_5"`` (5.0), digits of
    other scripts (``"٣"``), ``"nan"`` and ``"inf"``: a malformed score was then read as
    another value instead of making its line a bad line.
    """
    if not SCORE.fullmatch(text.strip()):
        raise ValueError(f"not a decimal number: {text!r}")
    return float(text)
