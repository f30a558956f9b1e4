"""Which models the gateway routes: the names in ``models.config``, optionally filtered."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

from serving.contract import MODELS_CONFIG_FILE, parse_model_names, version_numbers

__all__ = ["configured_models", "parse_model_names", "routed_models"]


def configured_models(repo: Path, *, keep_config: bool = False) -> list[str]:
    """Models named in ``repo/models.config``; without that file, folders holding versions.

    Raises ValueError for a ``models.config`` that is not UTF-8 or not a valid text proto
    (:func:`parse_model_names`), OSError when it cannot be read. ``keep_config``: the caller
    routes a config it read before, so one that is now empty raises ``EmptyConfigError`` and one
    that is gone raises FileNotFoundError (a replace under way: ``rm`` then a write), and the
    caller keeps its last good list as the model server keeps its config, instead of serving
    no model or every folder.
    """
    config = repo / MODELS_CONFIG_FILE
    if config.is_file():
        return parse_model_names(config.read_text(encoding="utf-8"), empty_ok=not keep_config)
    if keep_config:
        raise FileNotFoundError(errno.ENOENT, "models.config is gone", str(config))
    if not repo.is_dir():
        return []
    return sorted(child.name for child in repo.iterdir() if version_numbers(child))


def routed_models(repo: Path, only: Sequence[str], *, keep_config: bool = False) -> tuple[str, ...]:
    """The configured models, keeping only those in ``only`` when it is not empty
    (``keep_config``: as :func:`configured_models`)."""
    names = configured_models(repo, keep_config=keep_config)
    return tuple(name for name in names if not only or name in only)
