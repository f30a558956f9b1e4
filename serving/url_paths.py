"""A model's name (or label) as one segment of a TF Serving REST path, for every client of
the API here: the gateway's REST backend and OpenAPI paths, the launcher, the scripts.

Found by the adversarial repo pass 7: written as they were, a model named ``qa?x`` in
models.config sent its calls to model ``qa`` with a query, one named ``q a`` or ``é`` was no
valid request target, and a label ``..`` made ``/v1/models/qa/labels/../metadata``, which URL
normalisation (urllib3's, a proxy's) turns into ``/v1/models/qa/metadata``.
"""

from __future__ import annotations

from urllib.parse import quote


def path_segment(text: str) -> str:
    """``text`` percent-encoded as one path segment (``/`` too); a segment of dots alone
    (``.``, ``..``) as ``%2E``s, which no normalisation reads as a dot segment."""
    if text.strip(".") == "":
        return "%2E" * len(text)
    return quote(text, safe="")


def model_url_path(name: str) -> str:
    """``/v1/models/<name>``, the name one encoded segment."""
    return f"/v1/models/{path_segment(name)}"
