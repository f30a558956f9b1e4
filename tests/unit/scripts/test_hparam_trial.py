"""The hparam trial dev tool: overrides reach the run, the result line carries the metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import hparam_trial

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sts"


def test_trial_applies_overrides_and_prints_one_result_line(tmp_path, capsys):
    argv = ["similarity", '{"epochs": 2}', "--preset", "tiny", "--data-dir", str(FIXTURES)]
    assert hparam_trial.main([*argv, "--runs-dir", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1
    result = json.loads(lines[0].removeprefix("RESULT "))
    assert result["overrides"] == {"epochs": 2} and result["epochs_run"] == 2
    assert -1.0 <= result["metrics"]["spearman"] <= 1.0 and result["fit_cpu_s"] >= 0
    assert not (tmp_path / "unused-model-repo").exists()  # nothing exported


def test_overrides_must_be_a_json_object():
    with pytest.raises(SystemExit) as stopped:
        hparam_trial.main(["similarity", "[1, 2]"])
    assert stopped.value.code == 2
