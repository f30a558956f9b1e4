"""Entry point of ``python -m training``."""

from __future__ import annotations

import sys

from training.cli import main

if __name__ == "__main__":
    # One line per epoch should show up at once even when the output goes to a log file.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.exit(main())
