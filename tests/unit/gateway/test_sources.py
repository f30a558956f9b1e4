"""Which folder a version was checked on, and when another folder under its number differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.contract import ASSETS_DIR
from serving.gateway import sources
from serving.gateway.sources import MOVED, VersionSources

KEY = ("qa", 1)


def _build(folder: Path, spec: dict[str, object]) -> Path:
    (folder / ASSETS_DIR).mkdir(parents=True)
    (folder / ASSETS_DIR / "serving_spec.json").write_text(json.dumps(spec))
    (folder / ASSETS_DIR / "model.png").write_bytes(b"not read")
    return folder


def test_another_folder_with_other_assets_is_refused(tmp_path: Path) -> None:
    first = _build(tmp_path / "a" / "1", {"title": "a"})
    same = _build(tmp_path / "renamed" / "1", {"title": "a"})
    other = _build(tmp_path / "b" / "1", {"title": "b"})
    known = VersionSources()
    known.record(KEY, first)
    assert known.moved(KEY, first) == ""
    assert known.moved(KEY, None) == ""  # not seen at all: the loaded version stays
    assert known.moved(KEY, same) == ""  # the same files elsewhere: followed
    assert known.moved(KEY, other) == MOVED and known.refused(KEY) == MOVED
    assert known.moved(KEY, same) == "" and known.refused(KEY) == ""
    link = tmp_path / "link"
    link.symlink_to(other, target_is_directory=True)
    assert known.moved(KEY, link) == MOVED  # a symlink is the folder it points at
    known.forget("qa", served=set())
    assert known.moved(KEY, other) == ""  # unloaded: nothing known any more


def test_a_refused_folder_is_hashed_again_only_when_its_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the adversarial repo pass: a refused version's folder was hashed at every
    # poll of every worker (its tokenizers are megabytes).
    first = _build(tmp_path / "a" / "1", {"title": "a"})
    other = _build(tmp_path / "b" / "1", {"title": "b"})
    known = VersionSources()
    known.record(KEY, first)
    hashed: list[Path | None] = []
    digest = sources.asset_digests

    def counted(folder: Path | None) -> sources.Digests:
        hashed.append(folder)
        return digest(folder)

    monkeypatch.setattr(sources, "asset_digests", counted)
    for _ in range(3):
        assert known.moved(KEY, other) == MOVED
    assert hashed == [other]
    (other / ASSETS_DIR / "serving_spec.json").write_text(json.dumps({"title": "a"}))
    assert known.moved(KEY, other) == ""  # its files changed: hashed again, now the same
    assert hashed == [other, other]


def test_a_routed_versions_files_overwritten_in_place_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the adversarial repo pass 6: the same folder with other files was never
    # compared (only another folder was), and a worker started later read the new files.
    folder = _build(tmp_path / "qa" / "1", {"title": "a"})
    spec = folder / ASSETS_DIR / "serving_spec.json"
    known, unfit = VersionSources(), VersionSources()
    known.record(KEY, folder)
    unfit.record(KEY, folder, fits=False)
    hashed: list[Path | None] = []
    digest = sources.asset_digests

    def counted(found: Path | None) -> sources.Digests:
        hashed.append(found)
        return digest(found)

    monkeypatch.setattr(sources, "asset_digests", counted)
    for _ in range(3):  # unchanged: each poll stats the files, none hashes them
        assert known.moved(KEY, folder) == ""
    assert hashed == []
    spec.touch()
    assert known.moved(KEY, folder) == ""  # the same bytes
    (folder / ASSETS_DIR / "extra.json").write_text("{}")  # a file added is read by no one
    assert known.moved(KEY, folder) == ""
    spec.write_text(json.dumps({"title": "b"}))
    assert known.moved(KEY, folder) == MOVED and known.refused(KEY) == MOVED
    # an unfit version's changed files are checked again (the verdicts), not refused
    assert unfit.moved(KEY, folder) == ""
    spec.write_text(json.dumps({"title": "a"}))
    assert known.moved(KEY, folder) == "" and known.refused(KEY) == ""
    spec.unlink()  # a file removed: the runtime read once stays
    assert known.moved(KEY, folder) == ""
