"""The error raised when the data cannot train a model (the CLI turns it into exit code 2)."""

from __future__ import annotations


class DataError(ValueError):
    """Data that cannot train or validate a model: e.g. an empty training or validation split.

    The message names the split, the task and what was read (files, bad lines).
    """
