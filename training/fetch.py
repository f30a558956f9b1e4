"""Download the public datasets from their canonical sources and check them.

``training/datasets.json`` lists, per source, the files the project reads with the size and
sha256 of the copies we trained on. Without network access the download fails fast with a
clear message (a short connection timeout, the first failure stops the run).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MANIFEST = Path(__file__).with_name("datasets.json")
Opener = Callable[[str, float], IO[bytes]]


class FetchError(RuntimeError):
    """A dataset could not be downloaded or unpacked."""


@dataclass(frozen=True)
class DatasetFile:
    """One file the project reads, where it comes from in the download, and its checksum."""

    path: str
    member: str | None
    size: int
    sha256: str


@dataclass(frozen=True)
class Source:
    """One download: a URL, how to unpack it, and the files it provides."""

    name: str
    url: str
    kind: str  # "file", "tar", "zip" or "manual" (downloaded, not converted)
    files: tuple[DatasetFile, ...]
    note: str = ""


def load_sources(manifest: Path = MANIFEST) -> list[Source]:
    """The sources listed in the manifest."""
    payload = json.loads(manifest.read_text())
    return [
        Source(
            name=item["name"],
            url=item["url"],
            kind=item["kind"],
            files=tuple(DatasetFile(**entry) for entry in item["files"]),
            note=item.get("note", ""),
        )
        for item in payload["sources"]
    ]


def open_url(url: str, timeout: float) -> IO[bytes]:
    """Open a URL for reading with a connection timeout."""
    response: IO[bytes] = urllib.request.urlopen(url, timeout=timeout)
    return response


def download(source: Source, target: Path, timeout: float, opener: Opener) -> None:
    """Stream a source's URL into target, turning any network error into FetchError."""
    try:
        with opener(source.url, timeout) as response, target.open("wb") as sink:
            shutil.copyfileobj(response, sink)
    except (OSError, ValueError) as error:  # URLError, timeouts and HTTP errors are OSErrors
        raise FetchError(
            f"could not download {source.name} from {source.url} ({error}). Without network "
            "access, copy the datasets into the data dir by hand (see its README) and point "
            "--data-dir or DATA_DIR at it."
        ) from error


def unpack(source: Source, archive: Path, data_dir: Path) -> None:
    """Copy a source's files out of its download into the data dir."""
    for entry in source.files:
        destination = data_dir / entry.path
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.kind == "file":
            shutil.copyfile(archive, destination)
        elif source.kind == "tar":
            with tarfile.open(archive) as bundle:
                member = bundle.extractfile(entry.member or "")
                if member is None:
                    raise FetchError(f"{entry.member} is not a file in {source.url}")
                destination.write_bytes(member.read())
        elif source.kind == "zip":
            with zipfile.ZipFile(archive) as bundle:
                destination.write_bytes(bundle.read(entry.member or ""))


def fetch_all(
    data_dir: Path,
    timeout: float = 10.0,
    opener: Opener | None = None,
    sources: list[Source] | None = None,
) -> list[str]:
    """Download and unpack every source; return notes on files that need manual steps."""
    opener = opener or open_url
    data_dir.mkdir(parents=True, exist_ok=True)
    notes = []
    with tempfile.TemporaryDirectory(prefix="fetch-", dir=data_dir) as scratch:
        for source in sources if sources is not None else load_sources():
            archive = Path(scratch) / source.name
            download(source, archive, timeout, opener)
            if source.kind == "manual":
                kept = data_dir / "downloads" / Path(source.url).name
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(archive, kept)
                notes.append(f"{source.name}: downloaded to {kept}; {source.note}")
                continue
            try:
                unpack(source, archive, data_dir)
            except (OSError, KeyError, tarfile.TarError, zipfile.BadZipFile) as error:
                raise FetchError(f"could not unpack {source.name}: {error}") from error
    return notes


def verify_file(data_dir: Path, entry: DatasetFile) -> str | None:
    """A problem with one file (missing, wrong size, wrong sha256), or None if it matches."""
    path = data_dir / entry.path
    if not path.is_file():
        return f"{path} is missing"
    if path.stat().st_size != entry.size:
        return f"{path} has {path.stat().st_size} bytes, expected {entry.size}"
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != entry.sha256:
        return f"{path} sha256 {digest.hexdigest()} differs from {entry.sha256}"
    return None


def verify_all(data_dir: Path, sources: list[Source] | None = None) -> list[str]:
    """Problems with the files of every source (empty when all match)."""
    problems = []
    for source in sources if sources is not None else load_sources():
        for entry in source.files:
            problem = verify_file(data_dir, entry)
            if problem:
                problems.append(problem)
    return problems
