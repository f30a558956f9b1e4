"""The batching sweep's points: one model-server and gateway configuration each (issue 9).

A :class:`Point` is a ``batching_parameters.txt`` (TF Serving's text BatchingParameters),
TensorFlow's intra-op/inter-op pool sizes, the local model server's length-aware batches
and the gateway's worker count; :data:`POINTS` is the sweep's list, in the order of TF
Serving's guide for CPUs (``loadtests.batching_sweep`` runs them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CORES = os.cpu_count() or 2


@dataclass(frozen=True)
class Point:
    """One configuration: batching (None: off), TF pools (0: TF's default), gateway workers."""

    name: str
    max_batch_size: int = 32
    batch_timeout_micros: int = 0
    num_batch_threads: int = CORES
    batching: bool = True
    intra_op: int = 0
    inter_op: int = 0
    gateway_workers: int = 2
    split_by_length: bool = True  # the local model server's --batching_split_by_length

    def parameters(self) -> str:
        """The point's ``batching_parameters.txt`` (TF Serving's text BatchingParameters)."""
        return (
            f"max_batch_size {{ value: {self.max_batch_size} }}\n"
            f"batch_timeout_micros {{ value: {self.batch_timeout_micros} }}\n"
            "max_enqueued_batches { value: 64 }\n"
            f"num_batch_threads {{ value: {self.num_batch_threads} }}\n"
            "pad_variable_length_inputs: true\n"
        )

    def server_args(self) -> tuple[str, ...]:
        """Model server flags for the TF pools and length-aware batches."""
        return (
            f"--tensorflow_intra_op_parallelism={self.intra_op}",
            f"--tensorflow_inter_op_parallelism={self.inter_op}",
            f"--batching_split_by_length={str(self.split_by_length).lower()}",
        )

    def describe(self) -> str:
        """Short human-readable settings."""
        if not self.batching:
            batching = "batching off"
        else:
            batching = (
                f"max {self.max_batch_size}, timeout {self.batch_timeout_micros} us, "
                f"{self.num_batch_threads} batch threads, "
                + ("split by length" if self.split_by_length else "padded to the longest")
            )
        pools = f"intra {self.intra_op or 'default'}, inter {self.inter_op or 'default'}"
        return f"{batching}; {pools}; {self.gateway_workers} gateway workers"


POINTS = [
    Point("off", batching=False),
    Point("t0"),
    Point("t0-pad", split_by_length=False),
    Point("t1000", batch_timeout_micros=1000),
    Point("t2000", batch_timeout_micros=2000),
    Point("t5000", batch_timeout_micros=5000),
    Point("t0-intra1", intra_op=1),
    Point("t0-inter1", inter_op=1),
    Point("t0-bt1", num_batch_threads=1),
    Point("t0-bt1-intra1", num_batch_threads=1, intra_op=1, inter_op=1),
    Point("t0-bt4", num_batch_threads=4),
    Point("t0-max8", max_batch_size=8),
    Point("t0-gw3", gateway_workers=3),
    # Gateway workers at the shipped pools (one intra-op thread): make run's 2 against 1 and 3.
    Point("t0-intra1-gw1", intra_op=1, gateway_workers=1),
    Point("t0-intra1-gw3", intra_op=1, gateway_workers=3),
]
