"""Length-aware batches (packing.py): row lengths, the call plan, the cost fit, split runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from serving.modelserver.batching import Batcher
from serving.modelserver.config import BatchingSettings
from serving.modelserver.main import build_parser, options_from_args
from serving.modelserver.packing import (
    MIN_SAMPLES,
    CallCosts,
    SplitRunner,
    fitted_call_cost,
    plan_calls,
    row_lengths,
    run_split,
    splittable,
)
from serving.tensor_batches import merge_inputs, split_outputs


def test_row_lengths_count_up_to_the_last_id_that_is_not_padding():
    ids = np.array([[1, 2, 0, 0], [0, 0, 0, 0], [3, 0, 4, 0], [5, 6, 7, 8]], np.int32)
    assert row_lengths(ids).tolist() == [2, 0, 3, 4]
    assert row_lengths(np.zeros((2, 0), np.int32)).tolist() == [0, 0]


def test_empty_rows_pass_through_a_split_run():
    runner = RecordingRunner()
    merged = {"ids": np.zeros((2, 0), np.int32)}
    assert run_split(runner, "serving_default", merged, CallCosts(call_cost=0.0))[1] == 1
    assert runner.calls == [(2, 0)]


def covered(calls):
    return sorted(int(index) for call in calls for index in call)


def test_a_large_call_cost_keeps_one_call():
    lengths = np.array([[2], [30], [3], [29]])
    calls = plan_calls(lengths, call_cost=1e9)
    assert len(calls) == 1 and covered(calls) == [0, 1, 2, 3]


def test_short_and_long_rows_go_to_separate_calls_when_padding_costs_more_than_a_call():
    # one call: 5 + 4 rows * 10 = 45 cells; two calls: 2 * 5 + 2 * 2 + 2 * 10 = 34
    lengths = np.array([[10], [2], [10], [2]])
    calls = plan_calls(lengths, call_cost=5)
    assert sorted(sorted(int(i) for i in call) for call in calls) == [[0, 2], [1, 3]]
    # the same rows with a call costing more than the 16 wasted cells: one call
    assert len(plan_calls(lengths, call_cost=17)) == 1


def test_the_plan_sums_widths_over_inputs_and_covers_every_row_once():
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 40, size=(23, 2))
    for cost in (0.0, 10.0, 100.0, float("inf")):
        calls = plan_calls(lengths, cost)
        assert covered(calls) == list(range(23))
        if cost == 0.0:  # free calls: no row is padded by more than ties in the sort allow
            cells = sum(len(c) * np.maximum(lengths[c].max(axis=0), 1).sum() for c in calls)
            assert cells <= np.maximum(lengths, 1).sum() * 1.5


def test_the_fit_gives_the_fixed_cost_in_cells():
    rng = np.random.default_rng(1)
    rows = rng.integers(1, 30, size=200).astype(float)
    cells = rows * rng.integers(5, 60, size=200)
    seconds = 0.009 + 0.0004 * rows + 0.00025 * cells  # 9 ms per call, 0.25 ms per cell
    samples = np.column_stack([rows, cells, seconds])
    assert fitted_call_cost(samples) == pytest.approx(36.0, rel=1e-6)
    free_width = np.column_stack([rows, cells, 0.005 + 0.001 * rows])
    assert fitted_call_cost(free_width) > 1e9  # (inf, or a rounding error's tiny per-cell cost)
    negative = np.column_stack([rows, cells, 0.005 - 1e-6 * cells + 0.001 * rows])
    assert fitted_call_cost(negative) == float("inf")


def test_call_costs_wait_for_enough_calls_before_the_first_estimate():
    costs = CallCosts()
    for index in range(MIN_SAMPLES - 1):
        costs.observe(1 + index % 4, 10 * (1 + index % 7), 0.001 * (2 + index % 7))
        assert costs.call_cost() is None
    costs.observe(2, 30, 0.004)
    assert costs.call_cost() is not None


@pytest.mark.parametrize(
    ("inputs", "integer", "outputs", "expected"),
    [
        ([(-1, -1), (-1, -1)], [True, True], [(-1,), (-1, 3)], True),
        ([(-1, 128)], [True], [(-1,)], False),  # fixed width: never trim it
        ([(-1, -1, -1)], [True], [(-1,)], False),
        ([(-1, -1)], [False], [(-1,)], False),
        ([None], [True], [(-1,)], False),
        ([(-1, -1)], [True], [(-1, -1)], False),  # per-token outputs would not stack
        ([(-1, -1)], [True], [None], False),
        ([(-1, -1)], [True], [()], False),  # a scalar output has no rows to put back
    ],
)
def test_which_signatures_may_be_split(inputs, integer, outputs, expected):
    assert splittable(inputs, integer, outputs) is expected


class RecordingRunner:
    """Rows that do not depend on padding (a masked model); records each call's shapes."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def __call__(self, signature, inputs):
        ids = inputs["ids"]
        with self.lock:
            self.calls.append(ids.shape)
        first = ids[:, :1].sum(axis=1)
        return {"sum": ids.sum(axis=1), "first": np.stack([first, first * 2], axis=1)}


def requests_of_two_lengths():
    return [
        {"ids": np.arange(1, 3, dtype=np.int32)[None, :]},
        {"ids": np.arange(1, 41, dtype=np.int32).reshape(2, 20)},
        {"ids": np.array([[4, 5, 0]], np.int32)},  # sent with its own padding
        {"ids": np.arange(3, 43, dtype=np.int32).reshape(2, 20)},
    ]


def test_a_split_run_answers_each_request_as_its_own_call():
    requests = requests_of_two_lengths()
    runner = RecordingRunner()
    merged = merge_inputs(requests, pad=True)
    outputs, calls = run_split(runner, "serving_default", merged, CallCosts(call_cost=5.0))
    assert calls == 2
    assert sorted(runner.calls) == [(2, 2), (4, 20)]  # short rows trimmed, in their own call
    for request, part in zip(requests, split_outputs(outputs, [1, 2, 1, 2]), strict=True):
        alone = runner("serving_default", request)
        for key in alone:
            np.testing.assert_array_equal(part[key], alone[key])
            assert part[key].dtype == alone[key].dtype


def test_a_split_run_without_an_estimate_is_one_trimmed_call():
    runner = RecordingRunner()
    merged = merge_inputs([{"ids": np.array([[1, 0, 0, 0]], np.int32)}] * 3, pad=True)
    costs = CallCosts()
    assert run_split(runner, "serving_default", merged, costs)[1] == 1
    assert runner.calls == [(3, 1)]


def split_settings(split: bool) -> BatchingSettings:
    return BatchingSettings(
        max_batch_size=64,
        batch_timeout_micros=0,
        num_batch_threads=1,
        pad_variable_length_inputs=True,
        split_by_length=split,
    )


@pytest.mark.parametrize("split", [True, False])
def test_the_batcher_splits_only_when_asked_and_answers_alike(split):
    recorder = RecordingRunner()
    started, release = threading.Event(), threading.Event()

    def runner(signature, inputs):
        if inputs["ids"][0, 0] == 99:  # the blocker: hold the only batch thread
            started.set()
            release.wait(timeout=30)
        return recorder(signature, inputs)

    splits: list[tuple[int, float]] = []
    batcher = Batcher(
        runner,
        split_settings(split),
        splittable=lambda signature: True,
        observe_split=lambda calls, cost: splits.append((calls, cost)),
    )
    assert isinstance(batcher._run, SplitRunner) is split
    if isinstance(batcher._run, SplitRunner):
        batcher._run.costs["serving_default"] = CallCosts(call_cost=5.0)  # as if learned
    requests = requests_of_two_lengths()
    try:
        with ThreadPoolExecutor(len(requests) + 1) as pool:
            blocker = pool.submit(batcher.submit, "serving_default", {"ids": np.array([[99]])})
            assert started.wait(timeout=30)
            futures = [pool.submit(batcher.submit, "serving_default", r) for r in requests]
            for _ in range(3000):  # bounded wait until all six rows queue behind the blocker
                if batcher.pending_rows() == 6:
                    break
                threading.Event().wait(0.01)
            release.set()
            blocker.result(timeout=30)
            answers = [future.result(timeout=30) for future in futures]
    finally:
        release.set()
        batcher.close()
    for request, answer in zip(requests, answers, strict=True):
        np.testing.assert_array_equal(answer["sum"], request["ids"].sum(axis=1))
    expected = [(1, 1), (2, 2), (4, 20)] if split else [(1, 1), (6, 20)]
    assert sorted(recorder.calls) == expected
    assert splits == ([(1, 5.0), (2, 5.0)] if split else [])


def test_the_split_flag_is_on_by_default_and_can_be_turned_off(tmp_path: Path):
    (tmp_path / "batching.txt").write_text("pad_variable_length_inputs: true\n")
    common = [
        f"--model_base_path={tmp_path}",
        "--enable_batching",
        f"--batching_parameters_file={tmp_path / 'batching.txt'}",
    ]
    default = options_from_args(build_parser().parse_args(common))
    off = options_from_args(build_parser().parse_args([*common, "--batching_split_by_length=0"]))
    assert default.batching is not None and default.batching.split_by_length
    assert off.batching is not None and not off.batching.split_by_length


def test_a_signature_that_may_not_be_split_runs_as_one_padded_call():
    recorder = RecordingRunner()
    heard: list[tuple[int, float]] = []
    run = SplitRunner(
        recorder, lambda signature: False, lambda calls, cost: heard.append((calls, cost))
    )
    merged = merge_inputs(requests_of_two_lengths(), pad=True)
    run("serving_default", merged)
    assert recorder.calls == [(6, 20)] and heard == [] and run.costs == {"serving_default": None}


def test_tensors_of_another_rank_reach_the_graph_unsplit():
    """A client may send a [rows] vector where [rows, length] is declared: the graph, not the
    splitter, answers it (as without splitting)."""
    seen: list[tuple[int, ...]] = []

    def runner(signature, inputs):
        seen.append(inputs["ids"].shape)
        return {"sum": inputs["ids"].reshape(len(inputs["ids"]), -1).sum(axis=1)}

    run = SplitRunner(runner, lambda signature: True)
    run.costs["serving_default"] = CallCosts(call_cost=0.0)
    run("serving_default", {"ids": np.array([1, 2, 3], np.int32)})
    run("serving_default", {"ids": np.array([[1.0, 0.0]], np.float32)})
    assert seen == [(3,), (1, 2)]


@pytest.mark.parametrize(
    "row", [[1, 0, 2, 0, 0], [0, 0, 0, 0, 0], [4, 5, 6, 7, 8], [], [0, 3]], ids=str
)
def test_a_batch_of_one_row_is_one_call_trimmed_as_row_lengths_trims(row):
    """The one-row shortcut trims each input as the general path does (real length, >= 1),
    and its call is timed into the cost estimate."""
    runner = RecordingRunner()
    ids = np.array([row], np.int32).reshape(1, len(row))
    other = np.array([[9, 0, 0]], np.int32)
    costs = CallCosts(call_cost=0.0)

    def two_inputs(signature, inputs):
        runner.calls.append(inputs["other"].shape)
        return runner(signature, inputs)

    outputs, calls = run_split(two_inputs, "serving_default", {"ids": ids, "other": other}, costs)
    expected_width = max(int(row_lengths(ids)[0]), 1) if len(row) else 0
    assert calls == 1
    assert runner.calls == [(1, 1), (1, expected_width)]
    np.testing.assert_array_equal(outputs["sum"], ids.sum(axis=1))
    assert len(costs._samples) == 1


def test_a_batch_of_no_rows_reaches_the_graph_unsplit():
    """A request of 0 rows (a [0, n] tensor) ran into numpy's max of nothing: INTERNAL."""
    recorder = RecordingRunner()
    run = SplitRunner(recorder, lambda signature: True)
    run.costs["serving_default"] = CallCosts(call_cost=0.0)
    run("serving_default", {"ids": np.zeros((0, 3), np.int32)})
    assert recorder.calls == [(0, 3)]


@pytest.mark.parametrize("table_rows", [1, 2, 5])
def test_an_output_without_a_row_per_input_row_is_refused_in_a_split_run(table_rows):
    """A signature judged splittable whose output comes back with other rows than its call
    (declared [-1], computed as a unique or a reduce; or declared [5], a fixed table): its
    calls' outputs were written into the batch's rows, numpy's broadcast error (INTERNAL)
    or, with one row or as many as the call, another row's values, silently. Found by the
    adversarial pass breaknew6b; now FAILED_PRECONDITION, as an unsplit batch."""
    import grpc

    from serving.modelserver.errors import ServingError

    def runner(signature, inputs):
        ids = inputs["ids"]
        return {"sum": ids.sum(axis=1), "table": np.arange(float(table_rows))}

    merged = merge_inputs([r for r in requests_of_two_lengths()], pad=True)
    with pytest.raises(ServingError) as raised:
        run_split(runner, "serving_default", merged, CallCosts(call_cost=0.0))
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "output table" in raised.value.message
