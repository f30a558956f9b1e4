"""A JSON string that is no Unicode text: one shared rule for the gateway and the model
server (each answers it in its own error shape).

JSON's escapes can spell a lone surrogate (``"\\ud800"``, RFC 8259 section 8.2: "the
behavior of software that receives JSON texts containing such values is unpredictable");
Python's parser lets it through into a ``str`` that cannot be encoded as UTF-8, while
RapidJSON (TF Serving's parser) refuses the document.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` holds a surrogate code point (a lone one: a valid pair was decoded
    into one character by the parser). ASCII text, the usual case, is answered at once."""
    return not text.isascii() and _SURROGATE.search(text) is not None
