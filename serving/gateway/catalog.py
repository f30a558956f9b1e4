"""Which models the gateway routes: the names in ``models.config``, optionally filtered."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from serving.contract import MODELS_CONFIG_FILE, version_numbers

# A `name: "qa"` entry of TF Serving's text-format ModelServerConfig (single or double quotes).
NAME_ENTRY = re.compile(r"""(?:^|[\s{])name\s*:\s*(?:"([^"]*)"|'([^']*)')""")


def parse_model_names(text: str) -> list[str]:
    """The ``name:`` entries of a ``models.config`` text proto, in order (comments skipped).

    TF Serving's ``ModelConfig`` is the only message in that file with a ``name`` field, so
    every such entry names a model.
    """
    names = []
    for line in text.splitlines():
        for match in NAME_ENTRY.finditer(line.split("#", 1)[0]):
            names.append(match.group(1) if match.group(1) is not None else match.group(2))
    return list(dict.fromkeys(names))


def configured_models(repo: Path) -> list[str]:
    """Models named in ``repo/models.config``; without that file, folders holding versions."""
    config = repo / MODELS_CONFIG_FILE
    if config.is_file():
        return parse_model_names(config.read_text(encoding="utf-8"))
    if not repo.is_dir():
        return []
    return sorted(child.name for child in repo.iterdir() if version_numbers(child))


def routed_models(repo: Path, only: Sequence[str]) -> tuple[str, ...]:
    """The configured models, keeping only those in ``only`` when it is not empty."""
    names = configured_models(repo)
    return tuple(name for name in names if not only or name in only)
