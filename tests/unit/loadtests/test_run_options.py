"""``python -m loadtests.run``'s step options: a bad value is a usage error naming it, and a
failed locust run never reports an earlier run's summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests import run


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--steps", "abc"], "argument --steps: must be user counts like 1,4,16, got 'abc'"),
        (["--steps", "1,0"], "every step needs at least 1 user"),
        (["--steps", "1,,4"], "must be user counts"),
        (["--step-seconds", "-1"], "argument --step-seconds: must be a number of seconds > 0"),
        (["--step-seconds", "nan"], "must be a finite number of seconds, got 'nan'"),
        (["--step-warmup", "-2"], "argument --step-warmup: must be a number of seconds >= 0"),
        (["--step-seconds", "3"], "--step-warmup 3 leaves nothing of a --step-seconds 3 step"),
        (["--host", "127.0.0.1:8000"], "argument --host: must be the gateway's base URL"),
    ],
)
def test_a_bad_step_option_is_a_usage_error(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found as a new user: --steps abc was a ValueError traceback inside locust, and
    # --step-seconds -1, nan or 3 (the default warm-up) measured nothing and printed
    # "no request finished (server stuck or too slow?)".
    with pytest.raises(SystemExit) as stopped:
        run.parse_args(["--host", "http://x", *options])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_good_step_options_are_kept() -> None:
    args = run.parse_args(["--host", "http://h", "--steps", " 1, 04", "--step-seconds", "5"])
    assert (args.steps, args.step_seconds, args.step_warmup) == ("1,4", 5.0, 3.0)


def test_a_failed_run_does_not_report_an_earlier_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An unknown user class: locust stops before writing a summary, and the summary.json of
    # an earlier run into the same --out was printed as this run's figures and SLOs.
    (tmp_path / "summary.json").write_text(json.dumps({"steps": [], "slo": {"passed": True}}))
    code = run.main(["--host", "http://127.0.0.1:9", "--users", "Nope", "--out", str(tmp_path)])
    assert code != 0
    assert "locust wrote no summary" in capsys.readouterr().err
    assert not (tmp_path / "summary.json").exists()
