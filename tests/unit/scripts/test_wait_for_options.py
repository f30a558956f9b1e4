"""``scripts.wait_for``'s ``--timeout``: a wait that cannot end is a usage error (exit 2).
Found by the new-user trial (newuser9): --timeout nan never passed the deadline check, so a
server that never became ready was waited for forever; inf alike; -1 reported at once."""

from __future__ import annotations

import pytest

from scripts.wait_for import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "http://127.0.0.1:1/", "--timeout", "nan"], "finite number of seconds >= 0"),
        (["--url", "http://127.0.0.1:1/", "--timeout", "-1"], "finite number of seconds >= 0"),
        (["--url", "http://127.0.0.1:1/", "--timeout", "inf"], "finite number of seconds >= 0"),
        (["--url", "http://127.0.0.1:1/", "--timeout", "soon"], "must be a number of seconds"),
    ],
    ids=["nan", "negative", "inf", "word"],
)
def test_a_wait_that_cannot_end_well_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
