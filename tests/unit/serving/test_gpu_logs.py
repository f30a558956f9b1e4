"""Quiet start without a GPU: the two no-GPU lines are dropped, every other line is kept.

Each case runs in a subprocess: the filter swaps file descriptor 2, which pytest captures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from serving.gpu_logs import NO_GPU_LINES, gpu_present

ROOT = Path(__file__).resolve().parents[3]
CUDART = (
    "I0000 00:00:1795967566.300920   15858 cudart_stub.cc:31] Could not find cuda drivers on your"
    " machine, GPU will not be used."
)
CUINIT = (
    "E0000 00:00:1795967571.765463   15858 cuda_platform.cc:52] failed call to cuInit: INTERNAL:"
    " CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"
)
REAL_WARNING = "W0000 00:00:1795967571.8   15858 op_kernel.cc:1857] OP_REQUIRES failed: a real one"
needs_no_gpu = pytest.mark.skipif(gpu_present(), reason="the filter is off where a GPU exists")


def python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a new user runs it
    return subprocess.run(
        [sys.executable, *(["-c", code] if code else []), *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_pattern_matches_exactly_the_two_lines() -> None:
    assert NO_GPU_LINES.search(CUDART.encode())
    assert NO_GPU_LINES.search(CUINIT.encode())
    assert not NO_GPU_LINES.search(REAL_WARNING.encode())
    assert not NO_GPU_LINES.search(b"E0000 cuda_platform.cc:52] some other CUDA failure")


def test_filter_drops_only_the_no_gpu_lines_and_only_inside_the_block() -> None:
    code = textwrap.dedent(
        f"""
        import os, sys
        from serving.gpu_logs import stderr_without_no_gpu_lines
        with stderr_without_no_gpu_lines():
            os.write(2, b{CUDART!r} + b"\\n")
            os.write(2, b{REAL_WARNING!r} + b"\\n")
            print("python warning", file=sys.stderr)
            os.write(2, b{CUINIT!r} + b"\\n")
        os.write(2, b"after: " + b{CUINIT!r} + b"\\n")
        print("stdout untouched")
        """
    )
    run = python(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "stdout untouched\n"
    assert run.stderr.splitlines() == [REAL_WARNING, "python warning", f"after: {CUINIT}"]


@pytest.mark.slow
@needs_no_gpu
def test_tensorflow_starts_without_the_no_gpu_lines_but_with_real_ones() -> None:
    code = textwrap.dedent(
        """
        import os
        from serving.gpu_logs import import_tensorflow
        import_tensorflow()
        import tensorflow as tf
        assert tf.config.list_physical_devices("GPU") == []
        os.write(2, b"a real warning after the start\\n")
        """
    )
    run = python(code)
    assert run.returncode == 0, run.stderr
    assert "cuda drivers" not in run.stderr and "cuInit" not in run.stderr, run.stderr
    assert "a real warning after the start" in run.stderr


@pytest.mark.slow
@needs_no_gpu
def test_model_server_start_is_quiet_but_reports_real_errors(tmp_path: Path) -> None:
    missing = tmp_path / "models.config"
    run = python("", "-m", "serving.modelserver", "--model_config_file", str(missing))
    assert run.returncode != 0
    assert "cuda drivers" not in run.stderr and "cuInit" not in run.stderr, run.stderr
    assert "models.config" in run.stderr  # the real error still reaches the user


@pytest.mark.slow
@needs_no_gpu
def test_training_command_start_is_quiet_but_reports_real_errors(tmp_path: Path) -> None:
    command = ["-m", "training", "train", "qa", "--preset", "tiny", "--data-dir", str(tmp_path)]
    command += ["--runs-dir", str(tmp_path / "runs"), "--model-repo", str(tmp_path / "repo")]
    run = python("", *command)
    assert run.returncode != 0
    assert "cuda drivers" not in run.stderr and "cuInit" not in run.stderr, run.stderr
    assert str(tmp_path) in run.stderr + run.stdout, run.stderr[-2000:]
