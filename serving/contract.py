"""The export contract shared by training (writer) and serving (reader).

A model version lives in ``model_repo/<name>/<version>/`` as a TensorFlow SavedModel whose
``serving_default`` signature has the inputs and outputs named here, plus the files in
``assets.extra/`` that the gateway needs to turn text into ids and tensors into answers.
Its only third-party import is protobuf (to read ``models.config`` as TF Serving does:
:mod:`serving.models_config`), so every process can use it.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from serving.models_config import config_entries, parse_model_names
from serving.numbers import parse_version

SIGNATURE_NAME = "serving_default"
ASSETS_DIR = "assets.extra"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
MODEL_CARD_FILE = "model_card.json"
PREPROCESSING_FILE = "preprocessing.json"
WARMUP_FILE = "tf_serving_warmup_requests"
MODELS_CONFIG_FILE = "models.config"
MONITORING_CONFIG_FILE = "monitoring.config"
BATCHING_CONFIG_FILE = "batching_parameters.txt"
PAD_ID = 0
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


@dataclass(frozen=True)
class Signature:
    """Names of a model's signature inputs (all int32 ``[batch, length]``) and outputs."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


SIGNATURES: dict[str, Signature] = {
    "qa": Signature(inputs=("article_ids", "question_ids"), outputs=("answer_probs",)),
    "profile": Signature(inputs=("post_ids",), outputs=("age", "income_probs", "gender_prob")),
    "similarity": Signature(inputs=("left_ids", "right_ids"), outputs=("score",)),
}
MODEL_NAMES: tuple[str, ...] = tuple(SIGNATURES)

# Shapes of the outputs, per example: answer_probs [n_answers], age [], income_probs [10],
# gender_prob [] (probability of labels.json "gender"["positive"]), score [] in [0, 1].
INCOME_GROUPS = 10

# preprocessing.json, written by training and read by the gateway:
# {
#   "inputs": {"<input name>": {"max_length": int, "truncation": "left" | "right"}},
#   "pad_id": 0,
#   "post_separator": "[SEP]"          # profile only: joins a person's posts
#   "lowercase": true                  # informative; the tokenizer.json normalizer does it
# }
#
# labels.json:
#   qa:         {"answers": [str, ...]}                     index i <-> answer_probs[:, i]
#   profile:    {"income_groups": [{"group": int, "label": str, "rule": str}, ...],
#                "income_is_proxy": bool, "income_note": str,
#                "gender": {"labels": ["female", "male"], "positive": "male"},
#                "age": {"unit": "years"}}
#   similarity: {"score": {"range": [0.0, 1.0], "meaning": str}}


def holds_saved_model(folder: Path) -> bool:
    """True when a version folder holds a SavedModel file (it is not still being written)."""
    try:
        return any((folder / name).is_file() for name in SAVED_MODEL_FILES)
    except OSError:
        return False


def no_saved_model_reason(folder: Path) -> str | None:
    """Why a version folder is no complete version (the model server's log and the gateway's
    refusal), or None: it holds no SavedModel file, naming one a folder too deep
    (``7/export/saved_model.pb``, which no server reads)."""
    if holds_saved_model(folder):
        return None
    try:
        nested = sorted(
            str(found.relative_to(folder)) for found in folder.glob("*/saved_model.pb*")
        )
    except OSError:
        nested = []
    where = f"; {nested[0]} is in it: the version folder itself must hold it" if nested else ""
    return f"it holds no {' or '.join(SAVED_MODEL_FILES)} (a copy still under way?){where}"


# Errors of the process or the machine, not of a file or folder: no file descriptor left (a
# low ``ulimit -n``, a leak elsewhere), no kernel memory. Such a folder is not empty, nor
# such a file invalid: the gateway asks again later.
TRANSIENT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


def version_dirs(model_dir: Path, *, transient_errors: bool = False) -> dict[int, Path]:
    """Version number -> folder for a model's version folders (TF Serving's layout).

    Only ASCII decimal names in int64 range are versions (``serving.numbers.parse_version``);
    ``00000123`` is version 123 in its own folder, as TF Serving reads it. Of two folders of
    one number (``7``, ``007``) the one the local model server loads is kept: one holding a
    SavedModel, then the shorter name (the listing's order is the file system's, so taking the
    first found read one folder's spec and tokenizer while the server ran the other's model).
    An unreadable folder has no versions; with ``transient_errors``, OSError is raised when
    it cannot be listed for a reason of :data:`TRANSIENT_ERRNOS` (the caller must not take the
    versions for gone).
    """
    found: dict[int, Path] = {}
    try:
        children = sorted(model_dir.iterdir(), key=lambda child: (len(child.name), child.name))
    except OSError as error:
        if transient_errors and error.errno in TRANSIENT_ERRNOS:
            raise
        return {}
    for child in children:
        number = parse_version(child.name)
        if number is None or not child.is_dir():
            continue
        if number not in found or (
            not holds_saved_model(found[number]) and holds_saved_model(child)
        ):
            found[number] = child
    return dict(sorted(found.items()))


def version_numbers(model_dir: Path) -> list[int]:
    """The version numbers in a model's folder, ascending (see :func:`version_dirs`)."""
    return list(version_dirs(model_dir))


def repo_layout_problem(repo: Path) -> str | None:
    """Why ``repo`` cannot be a model repo (the folder of ``models.config`` and one folder
    per model), or None.

    Refused: a model's folder (it holds version folders, or its parent's ``models.config``
    names it) and a version folder or a path inside one (it holds a SavedModel). An export
    there wrote ``repo/<name>/<version>/`` and a ``models.config`` that no server reads (a
    version folder is named by digits only; TF Serving skips other names), and reported
    success. A path that does not exist yet is checked through its nearest existing folder.
    """
    existing = next((part for part in (repo, *repo.parents) if part.is_dir()), None)
    if existing is None:
        return None
    for folder in (existing, *existing.parents):
        if holds_saved_model(folder):
            return (
                f"{str(repo)!r} is inside the model version folder {str(folder)!r} (it holds "
                "a SavedModel): give the model repo, the folder that holds models.config"
            )
    if existing != repo:
        return None
    # A model may be named by digits (export's MODEL_NAME_PATTERN, TF Serving): the folder of
    # one the repo's own models.config configures is no version folder of the repo.
    configured = {model_dir(repo, name).resolve() for name in _own_model_names(repo)}
    versions = [
        number
        for number, folder in version_dirs(repo).items()
        if folder.resolve() not in configured
    ]
    if versions:
        return (
            f"{str(repo)!r} is a model's folder (it holds version folders {versions[:3]}): "
            f"give the model repo, its parent {str(repo.parent)!r}"
        )
    try:
        names = parse_model_names((repo.parent / MODELS_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if repo.name in names and repo.resolve() != repo.parent.resolve():
        return (
            f"{str(repo)!r} is the folder of model {repo.name!r} of "
            f"{str(repo.parent / MODELS_CONFIG_FILE)!r}: give the model repo, its parent"
        )
    return None


def _own_model_names(repo: Path) -> list[str]:
    try:
        return parse_model_names((repo / MODELS_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []


def model_dir(repo: Path, model: str) -> Path:
    """The folder of a model's versions: its ``base_path`` in ``repo/models.config``.

    A relative ``base_path`` is resolved against the config's folder, as TF Serving and the
    local model server resolve it (``name: "qa" base_path: "qa_bidaf"`` serves
    ``repo/qa_bidaf``). An absolute one is a path on the model server's side: used when it is
    a folder here too, else ``repo/<its last part>`` (the same volume mounted elsewhere, as
    ``/models/qa`` in the compose and k8s configs). A config that cannot be read or that the
    model server refuses (one being written, a bad edit) is read as the last good one, which
    the server keeps serving, and so is an empty one or one removed (a replace under way: the
    server keeps its config until it reads another). Without a config ever read, or an entry
    for ``model``: ``repo/model``, training's layout.
    """
    base = _base_paths(repo).get(model, "")
    if not base:
        return repo / model
    path = Path(base)
    if not path.is_absolute():
        return repo / path
    return path if path.is_dir() else repo / path.name


# models.config path -> model name -> base_path, as last read without error: a config being
# written, or refused, is read as this one (the model server keeps its last good config).
_LAST_GOOD_BASE_PATHS: dict[Path, dict[str, str]] = {}


def _base_paths(repo: Path) -> dict[str, str]:
    path = repo / MODELS_CONFIG_FILE
    try:
        configs = config_entries(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError; no config ever read:
        # training's layout
        return _LAST_GOOD_BASE_PATHS.get(path, {})
    found = {name: base_path for name, base_path, _ in configs}
    _LAST_GOOD_BASE_PATHS[path] = found
    return found


def absent_version_reason(repo: Path, versions: Path, folder: Path, version: int) -> str | None:
    """Why a version the model server runs has no ``folder`` in ``repo`` (the gateway's), or
    None when it has one; ``versions`` is the model's folder (:func:`model_dir`).

    newuser11: a base_path typo in models.config (the server kept the version it had loaded),
    or a gateway given another repo than the model server's, was "the version folder is
    incomplete ... (a copy still under way?)": no copy was under way, the folder did not
    exist. Names the folder relative to the repo (no server path reaches a client).
    """
    if os.path.lexists(folder):  # lstat needs no descriptor: no EMFILE read as "absent"
        return None
    try:
        shown = str(versions.relative_to(repo))
    except ValueError:  # an absolute base_path: its last part, as model_dir reads it
        shown = versions.name
    if not os.path.lexists(versions):
        return (
            f"the gateway's model repo (GATEWAY_MODEL_REPO) has no folder {shown!r} (this "
            "model's base_path in models.config), yet the model server runs its version "
            f"{version}: correct base_path, or give the gateway the model repo the model "
            "server reads"
        )
    return (
        f"the gateway's model repo (GATEWAY_MODEL_REPO) has no folder {shown}/{version}, yet "
        "the model server runs that version: it was removed, or the gateway reads another "
        "model repo than the model server (give both the same one)"
    )
