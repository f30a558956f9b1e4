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
import os
import stat
import threading
from pathlib import Path

from serving import contract

LOGGER = logging.getLogger("serving.gateway.registry")
Key = tuple[str, int]
Identity = tuple[str, int] | None  # a folder's real path and inode: what it is, not its name
Files = tuple[Identity, list[tuple[Path, int, int]]] | None  # a folder's JSON assets, as stat
Digests = dict[str, str]  # a folder's JSON assets: file name -> sha256 (hex)
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


def asset_digests(folder: Path | None) -> Digests:
    """Each JSON file of ``folder/assets.extra`` by name, with the sha256 (hex) of its bytes.

    Those are what a runtime reads (spec, tokenizers, model card, legacy files); empty when
    the folder is None or cannot be read.
    """
    if folder is None:
        return {}
    found = {}
    try:
        for path, _, _ in _json_assets(folder):
            # Non-blocking and checked on the descriptor: a FIFO swapped in after the listing
            # never blocks the poller (a second is_file() only narrowed that window).
            with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
                if stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # hashed in chunks
                    found[path.name] = hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return {}
    return found


def overwritten(before: Digests, now: Digests) -> bool:
    """Whether a file of ``before`` is there ``now`` with other bytes. A file removed is no
    other file: a routed version keeps its runtime (read once) when an asset is deleted,
    as the model server keeps running what it loaded."""
    return any(now.get(name, digest) != digest for name, digest in before.items())


class VersionSources:
    """Folder and assets digest per checked version; :meth:`moved` says when they changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (folder identity, assets digest, whether the verdict was that it fits)
        self._sources: dict[Key, tuple[Identity, Digests, bool]] = {}
        self._moved: dict[Key, str] = {}  # the versions refused, as of the last poll
        # A refused version's folder is compared at each poll: hashed again only when its
        # files change (tokenizers are megabytes).
        self._digests: dict[Key, tuple[Files, Digests]] = {}

    def record(self, key: Key, folder: Path | None, fits: bool = True) -> None:
        """Note the folder a verdict on ``key`` was reached on (its assets as they are now);
        ``fits``: the verdict routes it (its assets then count even in the same folder)."""
        files = self._files(folder)
        digest = asset_digests(folder)
        with self._lock:
            self._sources[key] = (identity(folder), digest, fits)
            self._moved.pop(key, None)
            self._digests[key] = (files, digest)  # hashed once: later polls stat the files

    def moved(self, key: Key, folder: Path | None) -> str:
        """:data:`MOVED` when ``key``'s folder is now another one (another path, a symlink
        re-pointed, a folder made again) with other assets, or, for a version that fits, the
        same folder with other assets (files overwritten in place), else "".

        Found by the adversarial repo pass 6: a routed version's files overwritten in place
        (``cp -r build/* qa/1/``, an rsync) were not noticed, as the folder was the same; the
        workers kept the runtime of the first files (the model server keeps running the
        model it loaded, as TF Serving), and a worker started later (``GATEWAY_MAX_REQUESTS``)
        read the new tokenizer and labels: two answers for one version number. An unfit
        version's changed files are checked again instead (a fixed spec), by the verdicts.
        """
        with self._lock:
            source = self._sources.get(key)
        current = identity(folder)
        if source is None or None in (source[0], current):
            # None: no folder of that number is seen (a volume being remounted); the model
            # server keeps running what it loaded, and so does the runtime checked with it.
            reason = ""
        elif source[0] == current:
            # The same folder: only a routed version's files overwritten count (an unfit
            # version's are checked again by the verdicts, as a fixed spec should be).
            changed = source[2] and overwritten(source[1], self._digest(key, folder))
            reason = MOVED if changed else ""
        elif self._digest(key, folder) == source[1]:
            reason = ""  # the same files (a folder renamed, files touched): follow them
            with self._lock:
                self._sources[key] = (current, source[1], source[2])
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
                "%s version %d is not routed: loaded from %s, its folder %s now holds other assets",
                *key,
                source[0] if source else None,
                folder,
            )
        return reason

    @staticmethod
    def _files(folder: Path | None) -> Files:
        try:
            return (identity(folder), _json_assets(folder)) if folder else None
        except OSError:
            return None

    def _digest(self, key: Key, folder: Path | None) -> Digests:
        files = self._files(folder)
        with self._lock:
            known = self._digests.get(key)
        if files is not None and known is not None and known[0] == files:
            return known[1]
        digest = asset_digests(folder)
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
