"""The serving spec's shared parts: names, labels, and the strict base of every part.

Split from :mod:`serving.spec` so the head kinds (:mod:`serving.spec_heads`) can live in their
own module; :mod:`serving.spec` re-exports every name.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Request fields and tensor names: identifiers, so they can be JSON keys, pydantic fields and
# TF signature keys alike (TF Serving's signature keys follow the same rule).
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# A label is answered as a value: one of only blanks is an empty line of a labels file.
Label = Annotated[str, Field(pattern=r"\S")]
Truncation = Literal["left", "right"]


class Frozen(BaseModel):
    """Spec parts: unknown keys are errors (a typo in a spec must not be silently ignored).

    Numbers must be finite: JSON has no NaN or Infinity (RFC 8259 section 6), so a spec
    holding one would be written with null in its place and not read back.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def unique(what: str, names: list[str]) -> None:
    """Raise ValueError naming the names that occur more than once."""
    # Counted once: names.count per name took seconds from 20,000 labels (quadratic).
    seen = {name for name, count in Counter(names).items() if count > 1}
    if seen:
        raise ValueError(f"duplicate {what}: {sorted(seen)}")
