"""The serving spec's shared parts: names, labels, and the strict base of every part.

Split from :mod:`serving.spec` so the head kinds (:mod:`serving.spec_heads`) can live in their
own module; :mod:`serving.spec` re-exports every name.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Request fields and tensor names: identifiers, so they can be JSON keys, pydantic fields and
# TF signature keys alike (TF Serving's signature keys follow the same rule).
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# A label is answered as a value: one of only blanks is an empty line of a labels file.
Label = Annotated[str, Field(pattern=r"\S")]
Truncation = Literal["left", "right"]


def _required(value: str) -> str:
    # "" or blanks where a name is required had been accepted: a signature_name of "" was
    # sent as such, and TF Serving's rule (an empty name is serving_default) served another
    # signature than the spec's without a word. Padding is refused too: " rate" names no
    # signature either.
    if not value.strip():
        raise ValueError("must not be empty or blank")
    if value != value.strip():
        raise ValueError(f"must not start or end with blanks: {value!r}")
    return value


def _optional(value: str) -> str:
    # "" means none (the key is left out of every answer); blanks alone would be answered
    # as a blank unit or note, an empty value in disguise.
    if value and not value.strip():
        raise ValueError('must be "" (none) or a text, not blanks')
    return value


# A text a part must have (a title, a signature name): not empty, not blank, not padded.
RequiredText = Annotated[str, AfterValidator(_required)]
# A text a part may leave out ("" = none) that clients see when set (a unit, a note).
OptionalText = Annotated[str, AfterValidator(_optional)]


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
