"""Entry point of ``python -m training`` and of the ``multihead-train`` command."""

from __future__ import annotations

import sys

from training.cli import main


def run() -> int:
    """Run the training command line with line-buffered output; returns the exit code."""
    # One line per epoch should show up at once even when the output goes to a log file.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return main()


if __name__ == "__main__":
    sys.exit(run())
