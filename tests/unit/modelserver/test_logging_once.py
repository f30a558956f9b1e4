"""Each TensorFlow log line of the model server prints once (``make run`` showed every
``Restoring parameters`` and deprecation warning twice: in TensorFlow's format and ours)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# As ``python -m serving.modelserver`` runs: TensorFlow imported first, then logging set up.
SCRIPT = """
from serving.gpu_logs import import_tensorflow
import_tensorflow()
from serving.modelserver.main import configure_logging
configure_logging("info")
import tensorflow as tf
tf.get_logger().info("probe line %d", 42)
"""


def test_a_tensorflow_line_is_logged_once_in_the_server_format() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "probe line 42" in line]
    assert len(lines) == 1, lines
    assert lines[0].endswith(" INFO tensorflow: probe line 42")
