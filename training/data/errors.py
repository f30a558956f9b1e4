"""The errors raised when the data cannot train a model (the CLI turns them into exit code 2)."""

from __future__ import annotations


class DataError(ValueError):
    """Data that cannot train or validate a model: e.g. an empty training or validation split.

    The message names the split, the task and what was read (files, bad lines).
    """


class MissingDataError(DataError, FileNotFoundError):
    """The data dir, or every file a task reads in it, is not there; the message names the path.

    A :class:`FileNotFoundError` too, for callers that catch that; the CLI reports it as a
    :class:`DataError` (exit code 2, no traceback).
    """
