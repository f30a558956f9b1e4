"""A bound on the chunks of a chunked request body, for gunicorn's parser (the workers').

gunicorn parses each chunk of a ``Transfer-Encoding: chunked`` body in Python (its size line,
then a copy of the rest of the read buffer), about 3-5 us a chunk: a 1 MB body sent as 1-byte
chunks (6 MB on the wire) cost a gevent worker 2.1 s of CPU, against 0.01 s for the same body
in 64 kB chunks (measured on the tiny repo under real gunicorn). The rule
(:func:`serving.chunk_counts.too_many_chunks`, shared with the model server) keeps the parse of
a body at the gateway's 1 MB limit under ~20,000 chunks. gunicorn has no setting for this, so
the workers put :class:`BoundedChunkedReader` where its request messages look the reader up.
"""

from __future__ import annotations

from typing import Any

from gunicorn.http import message
from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import InvalidChunkSize

from serving.chunk_counts import too_many_chunks, too_many_chunks_message


class TooManyChunksError(InvalidChunkSize):  # type: ignore[misc]
    """The body's chunks are too many for its size: a client error of the framing, as
    gunicorn's own ``InvalidChunkSize`` (400 from the app's body read, or from the worker)."""

    def __init__(self, chunks: int, size: int) -> None:
        super().__init__(b"")
        self.chunks = chunks
        self.size = size

    def __str__(self) -> str:
        return too_many_chunks_message(self.chunks, self.size)


class ChunkOverLimitError(InvalidChunkSize):  # type: ignore[misc]
    """The chunks announced so far hold more than the body limit (``max_body_bytes``): the
    app's 413, at the chunk size line that passes it, not once the bytes arrived (a chunk
    announcing 2^80 bytes was read until the limit, or waited for)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(b"")
        self.size = size
        self.limit = limit

    def __str__(self) -> str:
        return f"the chunks announce {self.size} bytes, over the limit {self.limit}"


class BoundedChunkedReader(ChunkedReader):  # type: ignore[misc]
    """gunicorn's chunked body reader, refusing a body whose chunks are too many for its size.

    Raises :class:`TooManyChunksError` from the read that parses chunk ``FREE_CHUNKS + 1`` or
    later when the chunks so far hold fewer than ``MIN_AVERAGE_CHUNK_BYTES`` bytes for each
    but one; :class:`ChunkOverLimitError` from the read that parses a chunk size taking the
    body past ``max_body`` bytes.
    """

    max_body: int | None = None  # the gateway's max_body_bytes (use_bounded_chunked_bodies)

    def __init__(self, req: Any, unreader: Any) -> None:
        super().__init__(req, unreader)
        self.chunks = 0
        self.size = 0
        self.refused = False  # the connection must close: its next bytes are this body's

    def parse_chunk_size(self, unreader: Any, data: bytes | None = None) -> tuple[int, Any]:
        """gunicorn's parse of one chunk size line; each chunk with data is counted."""
        size, rest = super().parse_chunk_size(unreader, data)
        if size == 0:  # the last chunk
            return size, rest
        self.chunks += 1
        self.size += size
        if self.max_body is not None and self.size > self.max_body:
            self.refused = True
            raise ChunkOverLimitError(self.size, self.max_body)
        if too_many_chunks(self.chunks, self.size):
            self.refused = True
            raise TooManyChunksError(self.chunks, self.size)
        return size, rest


def use_bounded_chunked_bodies(max_body: int | None = None) -> None:
    """Make this process's gunicorn read chunked request bodies with
    :class:`BoundedChunkedReader` (``gunicorn.http.message`` builds the reader by this name),
    refusing chunks past ``max_body`` bytes in all. Called in each gateway worker after the
    fork."""
    BoundedChunkedReader.max_body = max_body
    message.ChunkedReader = BoundedChunkedReader
