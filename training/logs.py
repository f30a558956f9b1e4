"""The training package's logger (its handler and format are set by the CLI, ``training.cli``)."""

from __future__ import annotations

import logging

LOGGER_NAME = "training"


def logger() -> logging.Logger:
    """The training logger (configured by the CLI)."""
    return logging.getLogger(LOGGER_NAME)
