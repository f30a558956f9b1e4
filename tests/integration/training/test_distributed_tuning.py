"""Distributed ``tune``: a chief and two workers on loopback share one search (tiny preset)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from serving.processes import free_port, stop_process
from training.tuning_distribution import ORACLE_IP, ORACLE_PORT, TUNER_ID

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "babi"
TRIALS = 3
DEADLINE = 780.0  # seconds for the whole search: three TF processes on a loaded 2-core box


def tune_process(runs: Path, port: int, role: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m training tune qa`` (tiny, 1 epoch) in the given role, output to ``log``."""
    argv = [sys.executable, "-m", "training", "tune", "qa", "--trials", str(TRIALS)]
    argv += ["--preset", "tiny", "--epochs", "1", "--data-dir", str(FIXTURES)]
    argv += ["--runs-dir", str(runs), "--oracle-port", str(port), *role]
    environment = {
        k: v for k, v in os.environ.items() if k not in (TUNER_ID, ORACLE_IP, ORACLE_PORT)
    }
    environment.update(PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    with log.open("wb") as stream:
        return subprocess.Popen(argv, cwd=ROOT, env=environment, stdout=stream, stderr=stream)


def wait_all(processes: dict[str, subprocess.Popen[bytes]], logs: dict[str, Path]) -> None:
    """Wait until all exit 0; stop them all and fail with the logs on a failure or DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    codes: dict[str, int | None] = {}
    try:
        while time.monotonic() < deadline:
            codes = {name: process.poll() for name, process in processes.items()}
            if any(code not in (None, 0) for code in codes.values()):
                break  # a worker that died would leave the chief waiting for it forever
            if all(code == 0 for code in codes.values()):
                return
            time.sleep(1.0)
    finally:
        for process in processes.values():
            stop_process(process, timeout=10)
    pytest.fail(f"exit codes {codes} (None: still running at {DEADLINE} s):\n" + tails(logs))


def tails(logs: dict[str, Path]) -> str:
    """The last lines of each process's output."""
    return "\n".join(
        f"--- {name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        for name, log in logs.items()
    )


def trial_folders(run_dir: Path) -> set[str]:
    """The trial ids a tuner ran (keras-tuner keeps one folder per trial it trained)."""
    return {path.name.removeprefix("trial_") for path in (run_dir / "tuner").glob("trial_*")}


def test_chief_and_two_workers_run_every_trial_once(tmp_path):
    runs, port = tmp_path / "runs", free_port()
    roles = {"chief": ["--chief"], "worker1": ["--worker", "1"], "worker2": ["--worker", "2"]}
    logs = {name: tmp_path / f"{name}.log" for name in roles}
    processes = {name: tune_process(runs, port, role, logs[name]) for name, role in roles.items()}
    wait_all(processes, logs)

    (chief,) = [path for path in runs.iterdir() if "worker" not in path.name]
    workers = {name: next(runs.glob(f"tune-qa-{name}-tiny-*")) for name in ("worker1", "worker2")}
    # The oracle's own records: one trial.json per trial, every one completed with a score.
    records = [
        json.loads(path.read_text())
        for path in sorted((chief / "tuner").glob("trial_*/trial.json"))
    ]
    assert len(records) == TRIALS
    assert {record["status"] for record in records} == {"COMPLETED"}
    assert all(record["score"] is not None for record in records)
    trial_ids = {record["trial_id"] for record in records}
    assert len(trial_ids) == TRIALS
    # Each trial was trained by exactly one worker; the chief trained none.
    ran = [trial_folders(run_dir) for run_dir in workers.values()]
    assert ran[0].isdisjoint(ran[1])
    assert ran[0] | ran[1] == trial_ids
    assert not list((chief / "tuner").glob("trial_*/checkpoint*"))
    recorded = json.loads((chief / "trials.json").read_text())
    assert sorted(row["trial_id"] for row in recorded) == sorted(trial_ids)
    for name in workers:
        assert "no trials left" in logs[name].read_text()
    assert "best hyperparameters" in logs["chief"].read_text()
    check_hparams_dashboard(chief / "tensorboard", recorded)


def check_hparams_dashboard(log_dir: Path, recorded: list[dict[str, Any]]) -> None:
    """The experiment at the root; per trial a session with its values and its objective."""
    root = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    root.Reload()
    assert "_hparams_/experiment" in root.Tags()["tensors"]
    for row in recorded:
        session = EventAccumulator(str(log_dir / f"trial_{row['trial_id']}"), {"tensors": 0})
        session.Reload()
        assert "_hparams_/session_start_info" in session.Tags()["tensors"]
        # The task's monitored quantity (qa's memnet: val_answer_probs_accuracy).
        (tag,) = [tag for tag in session.Tags()["tensors"] if not tag.startswith("_hparams_")]
        assert tag.startswith("val_") and tag.endswith("accuracy")
        (objective,) = session.Tensors(tag)
        assert float(tf.make_ndarray(objective.tensor_proto)) == pytest.approx(row["score"])
