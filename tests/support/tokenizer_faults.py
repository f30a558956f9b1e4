"""Broken ``tokenizer.json`` contents that tests of the export and the gateway share."""

from __future__ import annotations

from typing import Any

# A post-processor template naming a special token the file does not define: tokenizers
# panics ("no entry found for key", a pyo3 PanicException, a BaseException) on every encode
# with special tokens.
PANICKING_POST_PROCESSOR: dict[str, Any] = {
    "type": "TemplateProcessing",
    "single": [
        {"SpecialToken": {"id": "[ZZZ]", "type_id": 0}},
        {"Sequence": {"id": "A", "type_id": 0}},
    ],
    "pair": [],
    "special_tokens": {},
}
