"""Length-aware batches: run a merged batch as one or more TF calls of rows of similar length.

This server's extension to TF Serving's batching (``--batching_split_by_length``; TF Serving
always pads a batch to its longest request). Padding to the longest wastes compute on models
whose cost grows with the padded width, such as a transformer: in issue 9's mixed load a
similarity request's pairs hold 120 real ids but 201 padded ones, and batches of 4-8 such
requests padded to their longest 262-287 (x1.3-1.4). Splitting a batch into one call per
length group saves those cells but pays each call's fixed cost (reading the weights, per-op
overheads), which is what makes batching pay for small models. So the rows of a batch are
sorted by real length and cut into the groups that minimise

    cost = calls * call_cost + padded id cells        (cells: rows x width, summed over inputs)

with ``call_cost`` (in cells) learned per model version and signature from its own calls
(:class:`CallCosts`): a least-squares fit of call seconds on rows and cells. A model whose
cost hardly depends on the width (a TF-IDF bag, a small memory network) gets a large
``call_cost`` and keeps one padded call per batch; a transformer splits.

Correct under the rule that already makes padding correct (``pad_variable_length_inputs``):
the model ignores pad id 0, so a row gives the same outputs whatever number of trailing pad
columns it carries and whichever rows share its call. Only signatures whose inputs are all
``[batch, length]`` integer ids and whose outputs have fixed non-batch dimensions are split
(see :func:`splittable`); others run as one padded call, as in TF Serving.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.contract import PAD_ID
from serving.modelserver.errors import failed_precondition

Lengths = npt.NDArray[np.int64]
Tensors = dict[str, npt.NDArray[Any]]
MIN_SAMPLES = 32  # calls seen before the first fit; until then a batch is one call
WINDOW = 256  # recent calls the fit uses (the mix of a model's traffic changes)
REFIT_EVERY = 16


def row_lengths(ids: npt.NDArray[np.integer]) -> Lengths:
    """Real length of each row of a right-padded ``[rows, width]`` id matrix: 1 + the index of
    its last id that is not PAD_ID (0 for a row of padding only)."""
    real = ids != PAD_ID
    if real.shape[1] == 0:  # a [rows, 0] matrix (argmax has nothing to look at)
        return np.zeros(len(real), dtype=np.int64)
    last = real.shape[1] - np.argmax(real[:, ::-1], axis=1)
    return np.where(real.any(axis=1), last, 0).astype(np.int64)


def plan_calls(lengths: Lengths, call_cost: float) -> list[Lengths]:
    """Split rows into calls: ``lengths`` ``[rows, inputs]`` -> row indices of each call.

    Rows sorted by total length are cut into contiguous groups minimising
    ``calls * call_cost + sum(rows_in_call * sum of the call's widths)`` (dynamic programming,
    O(rows^2) numpy steps). A call's width per input is its longest row, at least 1.
    """
    order = np.argsort(lengths.sum(axis=1), kind="stable")
    ordered = np.maximum(lengths[order], 1)
    count = len(order)
    best = np.zeros(count + 1)
    start = np.zeros(count + 1, dtype=np.int64)
    for end in range(1, count + 1):
        # widths[i]: the width sum of a call of sorted rows i..end-1 (the running max backwards)
        widths = np.maximum.accumulate(ordered[end - 1 :: -1], axis=0)[::-1].sum(axis=1)
        costs = best[:end] + call_cost + (end - np.arange(end)) * widths
        start[end] = int(np.argmin(costs))
        best[end] = costs[start[end]]
    calls: list[Lengths] = []
    end = count
    while end > 0:
        calls.append(order[start[end] : end])
        end = int(start[end])
    return calls[::-1]


class CallCosts:
    """Learns one signature's fixed cost per TF call, in id cells, from the calls it times.

    Fits ``seconds = fixed + per_row * rows + per_cell * cells`` by least squares over the
    last WINDOW calls; ``call_cost = fixed / per_cell``. None (do not split) until MIN_SAMPLES
    calls; infinite when the width does not cost (``per_cell <= 0``). ``call_cost`` gives a
    starting estimate (tests, tools). Thread-safe.
    """

    def __init__(self, call_cost: float | None = None) -> None:
        self._samples: deque[tuple[float, float, float]] = deque(maxlen=WINDOW)
        self._lock = threading.Lock()
        self._since_fit = 0
        self._call_cost = call_cost

    def observe(self, rows: int, cells: int, seconds: float) -> None:
        """Record one call."""
        with self._lock:
            self._samples.append((float(rows), float(cells), seconds))
            self._since_fit += 1
            if len(self._samples) >= MIN_SAMPLES and self._since_fit >= REFIT_EVERY:
                self._call_cost = fitted_call_cost(np.array(self._samples))
                self._since_fit = 0

    def call_cost(self) -> float | None:
        """The current estimate in cells, or None before enough calls."""
        with self._lock:
            return self._call_cost


def fitted_call_cost(samples: npt.NDArray[np.float64]) -> float:
    """``fixed / per_cell`` from ``[calls, (rows, cells, seconds)]`` (inf if cells are free)."""
    design = np.column_stack([np.ones(len(samples)), samples[:, 0], samples[:, 1]])
    (fixed, _, per_cell), *_ = np.linalg.lstsq(design, samples[:, 2], rcond=None)
    if per_cell <= 0:
        return float("inf")
    return max(float(fixed), 0.0) / float(per_cell)


def splittable(
    input_shapes: Sequence[tuple[int, ...] | None],
    input_integer: Sequence[bool],
    output_shapes: Sequence[tuple[int, ...] | None],
) -> bool:
    """Whether a signature may be split: integer ``[batch, length]`` inputs of unknown length
    (-1) and outputs whose non-batch dimensions are all known (so calls' outputs stack)."""
    inputs_ok = all(
        shape is not None and len(shape) == 2 and shape[1] == -1 and integer
        for shape, integer in zip(input_shapes, input_integer, strict=True)
    )
    return inputs_ok and all(
        shape is not None and len(shape) >= 1 and -1 not in shape[1:] for shape in output_shapes
    )


Runner = Callable[[str, Tensors], Tensors]


def run_split(
    runner: Runner, signature: str, merged: Tensors, costs: CallCosts
) -> tuple[Tensors, int]:
    """Run a merged ``[rows, width]`` batch as the calls :func:`plan_calls` picks; return the
    outputs in the batch's row order and the number of calls. Each call is timed into ``costs``.
    """
    keys = sorted(merged)
    lengths = np.column_stack([row_lengths(merged[key]) for key in keys])
    widths = np.maximum(lengths.max(axis=0), 1)
    # One row (most batches at low load) has nothing to split: no plan to weigh.
    call_cost = costs.call_cost() if len(lengths) > 1 else None
    if call_cost is None or (
        len(lengths) * int(widths.sum()) - int(np.maximum(lengths, 1).sum()) <= call_cost
    ):  # the padded cells (waste) cannot pay for an extra call
        trimmed = {key: merged[key][:, :width] for key, width in zip(keys, widths, strict=True)}
        return _timed(runner, signature, trimmed, costs), 1
    rows = len(lengths)
    outputs: Tensors = {}
    calls = plan_calls(lengths, call_cost)
    for indices in calls:
        call_widths = np.maximum(lengths[indices].max(axis=0), 1)
        part = {
            key: merged[key][indices, :width] for key, width in zip(keys, call_widths, strict=True)
        }
        # A declared [-1] output may still come back with other rows (a unique, a reduce):
        # written into the batch's rows it would be numpy's broadcast error or another row's.
        for name, value in batched(_timed(runner, signature, part, costs), len(indices)).items():
            if name not in outputs:
                outputs[name] = np.empty((rows, *value.shape[1:]), dtype=value.dtype)
            outputs[name][indices] = value
    return outputs, len(calls)


class SplitRunner:
    """A version's runner whose batches run split by length (:func:`run_split`) for the
    signatures ``splittable`` allows, with one :class:`CallCosts` per signature;
    ``observe(calls, call_cost)`` hears each split run (call cost -1 before it is learned)."""

    def __init__(
        self,
        runner: Runner,
        splittable: Callable[[str], bool],
        observe: Callable[[int, float], None] | None = None,
    ) -> None:
        self._runner = runner
        self._splittable = splittable
        self._observe = observe or (lambda calls, call_cost: None)
        self.costs: dict[str, CallCosts | None] = {}  # None: the signature is not splittable

    def __call__(self, signature: str, merged: Tensors) -> Tensors:
        """Outputs of a merged batch, in its row order."""
        if signature not in self.costs:  # racing batch threads make equal entries
            self.costs[signature] = CallCosts() if self._splittable(signature) else None
        costs = self.costs[signature]
        if costs is None or not _has_id_rows(merged):
            return self._runner(signature, merged)
        outputs, calls = run_split(self._runner, signature, merged, costs)
        call_cost = costs.call_cost()
        self._observe(calls, -1.0 if call_cost is None else call_cost)
        return outputs


def batched(outputs: Tensors, rows: int) -> Tensors:
    """``outputs`` if each has ``rows`` rows (its 0th dimension), else FAILED_PRECONDITION.

    TF Serving's batching session refuses such a batch (``SplitOutputTensors``: "Batched
    output tensor has 0 dimensions", "...0th dimension does not equal the sum of the 0th
    dimension sizes of the input tensors"): a scalar or fixed-shape output (a table) cannot
    be sliced back per request, and slicing it would answer rows of the table as a request's.
    A batch of one request is passed on unchecked, as there (its outputs are its own).
    """
    for name, value in outputs.items():
        if value.ndim == 0 or value.shape[0] != rows:
            shape = "has 0 dimensions" if value.ndim == 0 else f"has {value.shape[0]} rows"
            raise failed_precondition(
                f"Batched output {name} {shape}, not the {rows} rows of its batch's inputs: "
                "with batching, every output needs the inputs' 0th (batch) dimension"
            )
    return outputs


def _has_id_rows(merged: Tensors) -> bool:
    """Whether a batch is integer matrices with rows, so it can be split. Tensors of another
    rank than the signature declares get the graph's error, as before; a batch of 0 rows has
    nothing to split (numpy has no longest of no rows)."""
    return bool(merged) and all(
        value.ndim == 2 and np.issubdtype(value.dtype, np.integer) and len(value) > 0
        for value in merged.values()
    )


def _timed(runner: Runner, signature: str, inputs: Tensors, costs: CallCosts) -> Tensors:
    started = time.perf_counter()
    outputs = runner(signature, inputs)
    cells = sum(int(value.size) for value in inputs.values())
    costs.observe(len(next(iter(inputs.values()))), cells, time.perf_counter() - started)
    return outputs
