"""The multiprocess metrics folder full, gone or over its size limit: requests are answered.

Found by the adversarial repo pass 6: with ``PROMETHEUS_MULTIPROC_DIR`` removed (a temp
cleaner) or its files unable to grow, every request of a worker was a 500 (``/healthz`` too,
so probes restarted the pod); on a full tmpfs the first write of a new label set was a SIGBUS
that killed the worker (prometheus-client writes its files through ``mmap``). Each case runs
in its own Python process: prometheus-client reads the folder's variable at import.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from serving.gateway.metrics_files import ReservedMmapedDict

# A gateway app in this process answers /healthz, a request of a new label set (an unknown
# route, counted as such) and /metrics; the limit on file sizes, if given, is set first.
SCRIPT = """
import json, resource, sys
limit = int(sys.argv[2])
if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from serving.gateway.app import create_app
from serving.gateway.backends.grpc_backend import GrpcBackend
from serving.gateway.settings import GatewaySettings

settings = GatewaySettings.model_validate({"model_repo": sys.argv[1], "log_level": "ERROR"})
app = create_app(settings, backend=GrpcBackend("127.0.0.1:9", timeout_seconds=1, retry=None))
client = app.test_client()
answers = [client.get(path) for path in ("/healthz", "/no/such/route", "/healthz", "/metrics")]
print(json.dumps([[answer.status_code, answer.get_json()] for answer in answers]))
"""


def _answers(repo: Path, folder: Path, limit: int = 0) -> list[list[object]]:
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": "."}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(repo), str(limit)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answers: list[list[object]] = json.loads(done.stdout.splitlines()[-1])
    return answers


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "models.config").write_text("model_config_list {}\n")
    return folder


def test_a_removed_metrics_folder_fails_no_request(repo: Path, tmp_path: Path) -> None:
    answers = _answers(repo, tmp_path / "gone")
    assert [status for status, _ in answers] == [200, 404, 200, 503]
    refused = answers[3][1]
    assert refused == {
        "error": "the metrics cannot be read (the gateway's PROMETHEUS_MULTIPROC_DIR folder)",
        "detail": [],
    }
    assert str(tmp_path) not in json.dumps(answers)


def test_metrics_files_that_cannot_grow_fail_no_request(repo: Path, tmp_path: Path) -> None:
    # RLIMIT_FSIZE below a file's first size: every file is refused as it is made (EFBIG).
    folder = tmp_path / "metrics"
    folder.mkdir()
    answers = _answers(repo, folder, limit=4096)
    # /metrics too (it was a 500): a file that could not be reserved is not left empty
    # in the folder, where prometheus-client's reader fails on it (struct.error).
    assert [status for status, _ in answers] == [200, 404, 200, 200]
    assert [path.name for path in folder.glob("*.db") if path.stat().st_size < 8] == []
    # The disk fixed (no limit now), the values are written and read again.
    assert [status for status, _ in _answers(repo, folder)] == [200, 404, 200, 200]


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 64 KiB, filled but for 8 KiB: only where the tests run as root and may
    mount (a full disk cannot be made otherwise)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        (mount / "filler").write_bytes(b"\0" * (56 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_kills_no_worker(repo: Path, full_tmpfs: Path) -> None:
    # Before: the process died of SIGBUS (returncode -7) at its first metric.
    answers = _answers(repo, full_tmpfs)
    assert [status for status, _ in answers][:3] == [200, 404, 200]


def test_reserved_files_keep_prometheus_clients_format(tmp_path: Path) -> None:
    values = ReservedMmapedDict(str(tmp_path / "counter_1.db"))
    keys = [f"key {index} " * index for index in range(300)]  # grows the file twice
    for index, key in enumerate(keys):
        values.write_value(key, float(index), 0.0)
    values.close()
    read = ReservedMmapedDict.read_all_values_from_file(str(tmp_path / "counter_1.db"))
    assert [(key, value) for key, value, _, _ in read] == [
        (key, float(index)) for index, key in enumerate(keys)
    ]


def test_the_master_survives_a_dead_workers_files_it_cannot_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gunicorn's master runs child_exit in its main loop: an OSError there (the folder gone,
    # a full disk) stopped the loop, and the gateway with it.
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from serving.gateway import gunicorn_conf

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "gone"))
    logged: list[str] = []
    log = Logger(Config())
    monkeypatch.setattr(log, "error", lambda message, *args: logged.append(message % args))
    gunicorn_conf.child_exit(SimpleNamespace(log=log), SimpleNamespace(pid=4242))
    assert logged == [
        "the metrics of worker 4242 cannot be folded: [Errno 2] No such file or directory: "
        f"'{tmp_path / 'gone' / 'folder.lock'}'"
    ]


def test_an_empty_values_file_fails_no_scrape_and_no_fold(repo: Path, tmp_path: Path) -> None:
    """A ``<kind>_<pid>.db`` of 0 bytes (a worker stopped as it made the file, or a file that
    could not be reserved by an earlier gateway) made every /metrics a 500 (prometheus-
    client's reader: "unpack_from requires a buffer of at least 4 bytes"), in every worker
    and for the gateway's life, and the master's fold of that worker a struct.error that
    stopped gunicorn's loop. It holds no values: the scrape skips it, the fold removes it."""
    from serving.gateway.metrics_files import archive_dead_worker

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_4242.db").write_bytes(b"")
    (folder / "histogram_4242.db").write_bytes(b"\0\0")
    answers = _answers(repo, folder)
    assert [status for status, _ in answers] == [200, 404, 200, 200]
    archive_dead_worker(folder, 4242)
    assert not (folder / "counter_4242.db").exists()
    assert not (folder / "histogram_4242.db").exists()


def test_a_values_file_cut_short_is_a_503_and_the_master_survives_its_fold(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A values file whose header counts more bytes than it holds (cut short: copied, or a
    disk error): every /metrics was a 500 'internal error' (struct.error, a server bug as
    told), and its worker's fold a struct.error in gunicorn's master loop, which stopped the
    gateway. Found by the adversarial pass breaknew6b."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from serving.gateway import gunicorn_conf

    folder = tmp_path / "metrics"
    folder.mkdir()
    cut = struct.pack("i", 4000) + b"\0" * 4 + struct.pack("i", 50) + b"abc"
    (folder / "counter_4242.db").write_bytes(cut)
    answers = _answers(repo, folder)
    assert [status for status, _ in answers] == [200, 404, 200, 503]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    logged: list[str] = []
    log = Logger(Config())
    monkeypatch.setattr(log, "error", lambda message, *args: logged.append(message % args))
    gunicorn_conf.child_exit(SimpleNamespace(log=log), SimpleNamespace(pid=4242))
    assert len(logged) == 1 and "worker 4242 cannot be folded" in logged[0]
    assert (folder / "counter_4242.db").exists()  # left for a person to look at
