"""TF Serving's thread-pool flags of the local model server."""

from __future__ import annotations

import os

import pytest

from serving.modelserver.main import build_parser, set_thread_pools


def test_thread_pool_flags_set_tensorflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(
        ["--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism", "0"]
    )
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "3")
    set_thread_pools(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    assert os.environ["TF_NUM_INTEROP_THREADS"] == "3"  # 0 keeps what is there


def test_thread_pool_flags_take_counts_only() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--tensorflow_intra_op_parallelism=-1"])
