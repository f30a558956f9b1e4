"""Which models the gateway routes: the names in ``models.config``, optionally filtered."""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from pathlib import Path

from serving.contract import MODELS_CONFIG_FILE, repo_layout_problem, version_numbers
from serving.models_config import parse_model_names

__all__ = [
    "ModelList",
    "StartCheck",
    "check_at_start",
    "configured_models",
    "parse_model_names",
    "routed_models",
]
LOGGER = logging.getLogger("serving.gateway.registry")


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
    return sorted(
        child.name for child in repo.iterdir() if version_numbers(child) and _nameable(child)
    )


def _nameable(folder: Path) -> bool:
    """Whether a folder's name can name a model: one that is not UTF-8 (a name the file system
    holds as bytes, read with surrogate escapes) cannot be sent to the model server (gRPC and
    protobuf strings are UTF-8), and is skipped with a warning. Found by the adversarial repo
    pass 5: such a folder made every poll, ``/readyz``, ``/v1/models`` and ``/openapi.json``
    fail (500), the other models' routing frozen."""
    try:
        folder.name.encode("utf-8")
    except UnicodeEncodeError:
        LOGGER.warning(
            "the folder %r of the model repo is not named in UTF-8: it names no model",
            folder.name.encode("utf-8", "surrogateescape"),
        )
        return False
    return True


def routed_models(repo: Path, only: Sequence[str], *, keep_config: bool = False) -> tuple[str, ...]:
    """The configured models, keeping only those in ``only`` when it is not empty
    (``keep_config``: as :func:`configured_models`)."""
    names = configured_models(repo, keep_config=keep_config)
    return tuple(name for name in names if not only or name in only)


class StartCheck:
    """Whether this process's gunicorn master read the repo at start (:func:`check_at_start`).

    A worker forked after that (a restart by ``GATEWAY_MAX_REQUESTS`` or a timeout, a
    ``SIGHUP`` reload) inherits ``passed`` and does not stop the gateway when the repo
    cannot be read at its boot: a worker's boot error halts gunicorn's master, so a
    recycled worker meeting a ``models.config`` being rewritten stopped the whole gateway.
    """

    passed = False


def check_at_start(repo: Path, only: Sequence[str]) -> None:
    """Read the repo as a worker will (:class:`ModelList`); raises as it does. In gunicorn's
    master, once, before the first workers (``gunicorn_conf.on_starting``)."""
    ModelList(repo, only)
    StartCheck.passed = True


class ModelList:
    """The routed model names, re-read from ``models.config`` at each poll."""

    def __init__(self, repo: Path, only: Sequence[str]) -> None:
        """Read the model list once; raises ValueError (or OSError) for a repo the gateway
        cannot serve from, which stops the gateway at start as it stops the model server.

        Refused: an unreadable or invalid ``models.config``, and a ``GATEWAY_MODEL_REPO``
        that is no folder, or is a model's or a version's folder
        (``serving.contract.repo_layout_problem``). Both had started a gateway that was ready
        with no model and logged nothing (a typo in the path, or a start from another
        folder with the default ``model_repo``): every request was a 404 "unknown model".
        A repo that lists no model (or none ``GATEWAY_MODELS`` keeps) is logged as a warning.
        In a worker forked after the start check passed (:class:`StartCheck`), a repo that
        cannot be read is logged as an error and the list is empty until a poll reads it.
        """
        self.repo, self.only = repo, tuple(only)
        self._error = ""
        try:
            self.models = self._first_read()
        except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
            if not StartCheck.passed:
                raise
            LOGGER.error(
                "a gateway worker started while its model repo cannot be read (it could at "
                "the gateway's start), routing no model until a poll reads it: %s",
                error,
            )
            self.models, self._error = (), str(error)
        self._has_config = self._config_file.is_file()  # else training's layout: the folders

    def _first_read(self) -> tuple[str, ...]:
        repo = self.repo
        if not repo.is_dir():
            raise ValueError(f"GATEWAY_MODEL_REPO {str(repo)!r} is not a folder")
        if (problem := repo_layout_problem(repo)) is not None:
            raise ValueError(f"GATEWAY_MODEL_REPO: {problem}")
        models = routed_models(repo, self.only)
        if missing := [name for name in self.only if name not in models]:
            LOGGER.warning(
                "GATEWAY_MODELS names %s, which GATEWAY_MODEL_REPO %r does not configure: not "
                "routed, and /readyz is 503 until it is (configured: %s)",
                missing,
                str(repo),
                list(routed_models(repo, ())),
            )
        if not models:
            LOGGER.warning(
                "GATEWAY_MODEL_REPO %r routes no model (its models.config lists none, or "
                "none of GATEWAY_MODELS %s; without a models.config, no folder holds versions)",
                str(repo),
                list(self.only),
            )
        return models

    @property
    def _config_file(self) -> Path:
        return self.repo / MODELS_CONFIG_FILE

    def reload(self) -> tuple[str, ...]:
        """Re-read ``models.config`` (a model added there is routed from now on).

        A file that cannot be read or parsed (a write under way, a bad edit) keeps the last
        good list, as the model server keeps its last good config; the error is logged once.
        So does one emptied or removed once read (a rewrite under way), as TF Serving takes no
        action for an empty config and the model server keeps its models.
        """
        try:
            keep = self._has_config
            self.models = routed_models(self.repo, self.only, keep_config=keep)
            self._has_config = keep or self._config_file.is_file()
            self._error = ""
        except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
            if str(error) != self._error:
                LOGGER.error("re-reading models.config failed, keeping %s: %s", self.models, error)
            self._error = str(error)
        return self.models
