"""Architecture artefacts of a training run: ``summary.txt`` and ``model.png``.

Both go into the run folder; ``architecture_assets`` hands them to the export, which copies
them into the version's ``assets.extra/`` next to the model card.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras

from training.logs import logger

SUMMARY_FILE = "summary.txt"
PLOT_FILE = "model.png"
# Wide enough that "Connected to" names of the longest layer names are not cut.
SUMMARY_LINE_LENGTH = 150
PLOT_DPI = 96  # screen resolution: the default 200 makes multi-megabyte PNGs


@contextmanager
def console_width(columns: int) -> Iterator[None]:
    """Set ``COLUMNS`` for the duration: Keras renders the summary with a ``rich`` console,
    which crops a table wider than the terminal (80 columns when not a terminal)."""
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        yield
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def write_summary(model: keras.Model, path: Path) -> Path:
    """Write ``model.summary(expand_nested=True)`` (with trainable flags) as UTF-8 text.

    Nested models (the shared siamese encoder, the MiniLM encoder) are listed layer by layer.
    """
    lines: list[str] = []

    def collect(line: str, *_: Any, **__: Any) -> None:
        lines.append(line)

    with console_width(SUMMARY_LINE_LENGTH + 10):
        model.summary(
            line_length=SUMMARY_LINE_LENGTH,
            expand_nested=True,
            show_trainable=True,
            print_fn=collect,
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plotting_unavailable() -> str | None:
    """Why ``keras.utils.plot_model`` cannot run here, or None if it can.

    It needs the ``pydot`` package and Graphviz's ``dot`` program (a system package).
    """
    if importlib.util.find_spec("pydot") is None:
        return "the pydot package is not installed"
    if shutil.which("dot") is None:
        return "Graphviz is not installed (no `dot` program; apt-get install graphviz)"
    return None


def write_plot(model: keras.Model, path: Path) -> Path | None:
    """Draw the model graph with shapes and layer names; None (one log line) without Graphviz.

    ``expand_nested=True`` draws a nested model as one dashed box holding its layers; a
    model called on two inputs (the siamese encoder) gets one box with both inputs
    entering it, so the sharing is visible.
    """
    reason = plotting_unavailable()
    if reason is not None:
        logger().warning("%s skipped: %s", path.name, reason)
        return None
    keras.utils.plot_model(
        model,
        to_file=str(path),
        show_shapes=True,
        show_layer_names=True,
        expand_nested=True,
        dpi=PLOT_DPI,
    )
    return path


def architecture_assets(model: keras.Model, run_dir: Path) -> dict[str, Path]:
    """Write ``summary.txt`` and (if Graphviz is there) ``model.png`` into ``run_dir``.

    Returns:
        File name in the version's ``assets.extra/`` -> file in ``run_dir``, for the
        export's ``extra_assets``.
    """
    assets = {SUMMARY_FILE: write_summary(model, run_dir / SUMMARY_FILE)}
    plot = write_plot(model, run_dir / PLOT_FILE)
    if plot is not None:
        assets[PLOT_FILE] = plot
    return assets
