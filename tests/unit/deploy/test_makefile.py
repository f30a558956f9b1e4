"""The Makefile's targets: every phony target has a rule (a phony name without one made
``make typecheck`` print "Nothing to be done" and exit 0, as if the types were checked)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parents[3] / "Makefile"


def test_every_phony_target_has_a_rule() -> None:
    text = MAKEFILE.read_text()
    phony = re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE)
    assert phony
    rules = set(re.findall(r"^([A-Za-z][\w-]*):", text, re.MULTILINE))
    assert set(phony.group(1).split()) <= rules


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_loadtest_users_reach_the_runner() -> None:
    # USERS=ModelUser: the load test of a repo of one's own models (loadtests/README.md).
    command = ["make", "-n", "-f", str(MAKEFILE), "loadtest", "USERS=ModelUser", "BIN=bin"]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "loadtests.run" in printed and "--users ModelUser" in printed
