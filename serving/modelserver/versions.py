"""Version folders on disk: which are versions, and when a failed one changed.

Only folders named by ASCII digits within int64 are versions (``00000123`` is 123, as in
TF Serving's own test models); ``99999999999999999999``, ``²`` or ``12a`` are not.
"""

from __future__ import annotations

import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from serving import contract
from serving.contract import holds_saved_model
from serving.numbers import parse_version

__all__ = [
    "IrregularFileError",
    "RetryPolicy",
    "check_regular_files",
    "folder_fingerprint",
    "list_versions",
    "skip_reason",
]


@dataclass(frozen=True)
class RetryPolicy:
    """TF Serving's ``--max_num_load_retries`` and ``--load_retry_interval_micros``."""

    max_retries: int = 5
    interval_seconds: float = 60.0


def list_versions(
    base_path: Path, loaded: Collection[int] = ()
) -> tuple[dict[int, Path], dict[str, str]]:
    """Complete version folders by number, and the names skipped with why.

    A version is a folder named by ASCII digits within int64 (leading zeros allowed, as in
    TF Serving's own test models) that holds a SavedModel file, or any such folder of a
    number in ``loaded``: found by the adversarial repo pass 7, a loaded version whose
    ``saved_model.pb`` was gone for a moment (a build copied over the folder, ``rsync
    --delete``) was no version any more, so it was unloaded, and with no other version
    every request was NOT_FOUND until the file was back; TF Serving aspires every numbered
    folder, whatever it holds, and keeps what it loaded. Hidden names are skipped silently;
    two names of one number (``7``, ``007``) keep the shorter one. Every other entry is
    skipped with its reason (:func:`skip_reason`): a numbered folder without a SavedModel
    yet, or one that cannot be read (a symlink loop), was skipped without a word, so a
    version copied wrongly was never served and nothing said why.

    Raises OSError when ``base_path`` is missing or cannot be listed: that is no empty model
    (TF Serving's ``PollFileSystemForServable`` emits no versions then, so a base path that is
    transiently unavailable unloads nothing), while an existing empty folder is.
    """
    versions: dict[int, Path] = {}
    skipped: dict[str, str] = {}
    children = sorted(base_path.iterdir(), key=lambda child: (len(child.name), child.name))
    for child in children:
        number = parse_version(child.name)
        # Only a numbered entry is looked into: the others (hidden staging copies, a README)
        # had been probed for a SavedModel on every poll, then skipped anyway.
        if number is not None and _is_version(child, number, loaded):
            versions.setdefault(number, child)
        elif not child.name.startswith(".") and (reason := skip_reason(child, number)):
            skipped[child.name] = reason
    return versions, skipped


def _is_version(child: Path, number: int, loaded: Collection[int]) -> bool:
    try:
        return child.is_dir() and (number in loaded or holds_saved_model(child))
    except OSError:
        return False


def skip_reason(child: Path, number: int | None) -> str:
    """Why an entry of a base path is no version, or "" for one not worth a word (a file
    that is not named as a version, such as a README)."""
    try:
        is_dir = stat.S_ISDIR(child.stat().st_mode)
    except OSError as error:  # a dangling link, a symlink loop, a folder it may not enter
        reason = error.strerror or type(error).__name__
        return f"it cannot be read: {reason}" if number is not None else ""
    if number is None:
        return "a version folder is named by ASCII digits within int64" if is_dir else ""
    if not is_dir:
        return "a version is a folder, this is a file"
    return f"not a version yet: {contract.no_saved_model_reason(child)}"


def folder_fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under a version folder with its size and ctime (ns).

    Changes when a copy lands, and when permissions are fixed (``chmod`` moves the ctime, not
    the mtime; a version that failed to load on an unreadable file is retried at once then).
    """
    entries = []
    for file in sorted(path.rglob("*")):
        try:
            if file.is_file():
                stat = file.stat()
                entries.append((str(file.relative_to(path)), stat.st_size, stat.st_ctime_ns))
        except OSError:
            continue
    return tuple(entries)


class IrregularFileError(ValueError):
    """A version folder holds an entry that is neither a folder nor a regular file."""


def check_regular_files(path: Path) -> None:
    """Raise :class:`IrregularFileError` unless everything of the SavedModel in ``path``
    (symlinks followed, each folder once) is a folder or a regular file.

    TensorFlow opens every file of a SavedModel (variables, assets) with a blocking read: a
    FIFO there (a copy tool's pipe, a bad extract) kept the load, and with it the poller of
    every model and the shutdown that joins it, waiting for a writer forever; a device such
    as ``/dev/zero`` would be read without end. ``assets.extra/`` is not walked: the server
    reads only its warmup file there, and only when it is a regular file (the gateway checks
    the rest). Dangling symlinks are left to the load, which reports the missing file.
    """
    seen: set[tuple[int, int]] = set()
    folders = [path]
    while folders:
        folder = folders.pop()
        status = folder.stat()
        if (status.st_dev, status.st_ino) in seen:  # a symlink loop or a folder linked twice
            continue
        seen.add((status.st_dev, status.st_ino))
        for child in sorted(folder.iterdir()):
            if folder == path and child.name == contract.ASSETS_DIR:
                continue
            try:
                mode = child.stat().st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                folders.append(child)
            elif not stat.S_ISREG(mode):
                raise IrregularFileError(f"{child} is not a regular file")
