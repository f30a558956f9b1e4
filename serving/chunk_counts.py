"""How many chunks a chunked request body may have for its size: one rule for the gateway's
gunicorn workers (``serving/gateway/chunked.py``) and the model server's REST port
(``serving/modelserver/rest_http.py``), whose servers both parse each chunk in Python.

Per chunk, gunicorn spends 3-5 us and cheroot ~0.8 us: a body of 1-byte chunks (6 bytes on
the wire each) cost the gateway 2.1 s of CPU per MB, and at the model server's 256 MB limit
it would hold the GIL for ~30 s. Clients send chunks of a write buffer (kilobytes) or of
their serialiser's pieces (``json.JSONEncoder.iterencode``: a few per field, hundreds for a
full batch), so the first ``FREE_CHUNKS`` chunks are taken as they come and after them the
chunks must average ``MIN_AVERAGE_CHUNK_BYTES``.
"""

from __future__ import annotations

FREE_CHUNKS = 4096
MIN_AVERAGE_CHUNK_BYTES = 64


def too_many_chunks(chunks: int, size: int) -> bool:
    """Whether ``chunks`` chunks holding ``size`` bytes in all are too many (counted as each
    chunk's size line is read, so a body is refused at its first chunk past the rule)."""
    # One short chunk is allowed (a body cut into equal chunks ends with its remainder).
    return chunks > FREE_CHUNKS and size < (chunks - 1) * MIN_AVERAGE_CHUNK_BYTES


def too_many_chunks_message(chunks: int, size: int) -> str:
    """What a client is told of a body refused by :func:`too_many_chunks`."""
    return (
        f"{chunks} chunks for {size} bytes: past {FREE_CHUNKS} chunks they must "
        f"average {MIN_AVERAGE_CHUNK_BYTES} bytes"
    )
