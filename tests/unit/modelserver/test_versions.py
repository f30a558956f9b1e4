"""Version folders on disk: what counts as a change of a failed version's files."""

from __future__ import annotations

from pathlib import Path

from serving.modelserver.versions import folder_fingerprint


def test_fixing_a_files_permissions_changes_the_folders_fingerprint(tmp_path: Path) -> None:
    # Found by the adversarial repo pass: a load that failed on an unreadable file is retried
    # at once when the folder's files change, and chmod changes neither size nor mtime: a
    # fixed version waited for the retry interval, or forever once its retries ran out.
    (tmp_path / "variables").mkdir()
    data = tmp_path / "variables" / "variables.data-00000-of-00001"
    data.write_bytes(b"weights")
    before = folder_fingerprint(tmp_path)
    data.chmod(0o000)
    unreadable = folder_fingerprint(tmp_path)
    data.chmod(0o644)
    assert len({before, unreadable, folder_fingerprint(tmp_path)}) == 3
