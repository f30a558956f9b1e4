"""Which folder each model version's verdict was reached on, and when that folder changes.

A model server does not reload a version number it has loaded: when ``models.config`` gives
a model another ``base_path`` (or another folder of one number appears, ``7`` then ``007``,
or a version folder that is a symlink is re-pointed at another build),
TF Serving's ``AspiredVersionsManager::SetAspiredVersions`` only adds version numbers it does
not manage yet, so version N keeps running the SavedModel it was loaded from until it is
unloaded. The gateway then cannot tell which folder's tokenizer and spec belong to the model
the server runs for N: when the new folder's assets differ from those N was checked with,
N is not routed (an unfit version, with :data:`MOVED` as its reason) until the server
unloads it; when they are the same files (a folder renamed), nothing changes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

from serving import contract

LOGGER = logging.getLogger("serving.gateway.registry")
Key = tuple[str, int]
Identity = tuple[str, int] | None  # a folder's real path and inode: what it is, not its name
Files = tuple[Identity, list[tuple[Path, int, int]]] | None  # a folder's JSON assets, as stat
MOVED = (
    "its folder under models.config's base_path now holds other assets than the ones it was "
    "loaded with, and a model server keeps running a loaded version number: publish them as "
    "a new version"
)


def identity(folder: Path | None) -> Identity:
    """The folder's real path (symlinks followed) and inode; None when it cannot be seen.

    A version folder that is a symlink re-pointed at another build, or a folder removed and
    made again, is another folder under the same name.
    """
    if folder is None:
        return None
    try:
        real = folder.resolve()
        return str(real), real.stat().st_ino
    except OSError:  # a dangling symlink, a loop, a folder gone meanwhile
        return None


def _json_assets(folder: Path) -> list[tuple[Path, int, int]]:
    """Each regular JSON file of ``folder/assets.extra`` with its size and ctime, by name."""
    found = []
    for path in sorted((folder / contract.ASSETS_DIR).glob("*.json")):
        if path.is_file():  # a FIFO would block on open
            stat = path.stat()
            found.append((path, stat.st_size, stat.st_ctime_ns))
    return found


def assets_digest(folder: Path | None) -> str:
    """sha256 (hex) over the name and bytes of each JSON file in ``folder/assets.extra``.

    Those are what a runtime reads (spec, tokenizers, model card, legacy files); "" when the
    folder is None or cannot be read.
    """
    if folder is None:
        return ""
    digest = hashlib.sha256()
    try:
        for path, _, _ in _json_assets(folder):
            if path.is_file():
                digest.update(path.name.encode() + b"\0")
                with path.open("rb") as file:  # in chunks, whatever its size
                    digest.update(hashlib.file_digest(file, "sha256").digest())
    except OSError:
        return ""
    return digest.hexdigest()


class VersionSources:
    """Folder and assets digest per checked version; :meth:`moved` says when they changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[Key, tuple[Identity, str]] = {}
        self._moved: dict[Key, str] = {}  # the versions refused, as of the last poll
        # A refused version's folder is compared at each poll: hashed again only when its
        # files change (tokenizers are megabytes).
        self._digests: dict[Key, tuple[Files, str]] = {}

    def record(self, key: Key, folder: Path | None) -> None:
        """Note the folder a verdict on ``key`` was reached on (its assets as they are now)."""
        source = (identity(folder), assets_digest(folder))
        with self._lock:
            self._sources[key] = source
            self._moved.pop(key, None)
            self._digests.pop(key, None)

    def moved(self, key: Key, folder: Path | None) -> str:
        """:data:`MOVED` when ``key``'s folder is now another one (another path, a symlink
        re-pointed, a folder made again) with other assets, else ""."""
        with self._lock:
            source = self._sources.get(key)
        current = identity(folder)
        if source is None or None in (source[0], current) or source[0] == current:
            # None: no folder of that number is seen (a volume being remounted); the model
            # server keeps running what it loaded, and so does the runtime checked with it.
            reason = ""
        elif self._digest(key, folder) == source[1]:
            reason = ""  # the same files elsewhere (a folder renamed): follow them
            with self._lock:
                self._sources[key] = (current, source[1])
        else:
            reason = MOVED
        with self._lock:
            known = self._moved.get(key, "")
            if reason:
                self._moved[key] = reason
            else:
                self._moved.pop(key, None)
        if reason and not known:
            LOGGER.warning(
                "%s version %d is not routed: loaded from %s, its folder is now %s with other "
                "assets",
                *key,
                source[0] if source else None,
                folder,
            )
        return reason

    def _digest(self, key: Key, folder: Path | None) -> str:
        files: Files
        try:
            files = (identity(folder), _json_assets(folder)) if folder else None
        except OSError:
            files = None
        with self._lock:
            known = self._digests.get(key)
        if files is not None and known is not None and known[0] == files:
            return known[1]
        digest = assets_digest(folder)
        with self._lock:
            self._digests[key] = (files, digest)
        return digest

    def refused(self, key: Key) -> str:
        """The reason the last poll found for ``key`` (``""``: none)."""
        with self._lock:
            return self._moved.get(key, "")

    def forget(self, model: str, served: set[int]) -> None:
        """Drop what is known of the model's versions the server no longer serves."""
        with self._lock:
            for cache in (self._sources, self._moved, self._digests):
                for key in [key for key in cache if key[0] == model and key[1] not in served]:
                    del cache[key]
