"""A quiet TensorFlow start on machines without a GPU: exactly two misleading lines dropped.

TensorFlow's CUDA-enabled wheel prints these on every machine without a GPU driver::

    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ... (303)

A new user reads the ``E`` line as a failure, but training and serving run on the CPU as
intended. C++ writes them straight to file descriptor 2 (absl logging before
``absl::InitializeLog``), so ``TF_CPP_MIN_LOG_LEVEL`` and ``CUDA_VISIBLE_DEVICES=""`` do not
hide them (checked with TensorFlow 2.21; tensorflow/tensorflow#100442 and #59849), and Python's
logging never sees them. :func:`import_tensorflow` therefore imports TensorFlow and starts its
CUDA platform (where the ``cuInit`` line comes from) with descriptor 2 routed through a line
filter that drops only lines matching :data:`NO_GPU_LINES` and copies every other line
unchanged, then restores descriptor 2. It filters only where no GPU device exists (no
``/dev/nvidia*`` and no ``nvidia-smi``): on a GPU machine those lines mean a broken driver and
are left alone. Real warnings, later log lines and crash output are never touched.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# The two lines, by source file and wording (TF 2.21; cuda_driver.cc in older versions).
NO_GPU_LINES = re.compile(
    rb"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"
    rb"|cuda_(?:platform|driver)\.cc:\d+\] failed call to cuInit"
)
PUMP_JOIN_SECONDS = 5.0


def gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU device node or the ``nvidia-smi`` tool."""
    return bool(glob.glob("/dev/nvidia*")) or shutil.which("nvidia-smi") is not None


def _pump(read_fd: int, out_fd: int) -> None:
    """Copy lines from the pipe to the real stderr, dropping the no-GPU lines."""
    with os.fdopen(read_fd, "rb") as source:
        for line in source:
            if not NO_GPU_LINES.search(line):
                os.write(out_fd, line)


@contextmanager
def stderr_without_no_gpu_lines() -> Iterator[None]:
    """Within the block, descriptor 2 (C++ and Python alike) passes the line filter."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, saved), name="stderr-filter", daemon=True)
    pump.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's only write end: the pump reads to EOF and ends
        pump.join(PUMP_JOIN_SECONDS)
        if not pump.is_alive():  # else a child still holds the pipe: keep its target open
            os.close(saved)


def import_tensorflow() -> None:
    """Import TensorFlow and start its CUDA platform, without the no-GPU lines where no GPU is.

    Call it before anything imports TensorFlow (the training commands, the model server).
    """
    if gpu_present():
        return
    with stderr_without_no_gpu_lines():
        import tensorflow as tf

        # Starts the CUDA platform now, inside the filter: that is when cuInit is called.
        tf.config.list_physical_devices("GPU")
