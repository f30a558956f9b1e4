"""Request coalescing with a per-token output (a ``token_labels`` head, ``[rows, tokens,
labels]``): each request gets its own rows of the merged call, each row's positions where
its ids were sent, and positions past its width hold only the merged call's padding."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.gateway.backends import VersionSelector
from tests.unit.gateway.test_coalescing import (
    PAD,
    WAIT_SECONDS,
    RowBackend,
    held,
    patient,
    pool,  # noqa: F401 - the fixture
    rows,
)


@dataclass
class TokenBackend(RowBackend):
    """Adds ``tags``: per position, [its id, its position] (where the row's ids were)."""

    def predict(
        self,
        model: str,
        selector: VersionSelector,
        inputs: Mapping[str, npt.NDArray[Any]],
        request_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, npt.NDArray[Any]]:
        outputs = super().predict(model, selector, inputs, request_id, timeout_seconds)
        ids = inputs["ids"]
        positions = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
        outputs["tags"] = np.stack([ids, positions], axis=-1).astype(np.float32)
        return outputs


def test_a_per_token_output_is_sliced_per_request_and_row(pool: ThreadPoolExecutor) -> None:  # noqa: F811
    backend = TokenBackend()
    coalescer = patient(backend, 32, 1)
    queued = [rows(2), rows(1, 6, 3, start=10), rows(4, start=40)]
    first, futures = held(coalescer, backend, pool, [("m", 1, q) for q in queued])
    first.result(WAIT_SECONDS)
    answers = [future.result(WAIT_SECONDS) for future in futures]
    # After the answers: the first request's answer is set before its thread sends the
    # queued ones (asserted right after it, the second call was not made yet).
    assert [call[2] for call in backend.calls] == [1, 5]  # the three shared one call
    for inputs, answer in zip(queued, answers, strict=True):
        tags = answer["tags"]
        ids = inputs["ids"]
        assert tags.shape == (len(ids), 6, 2)  # the merged call's width: 6 positions
        width = ids.shape[1]
        np.testing.assert_array_equal(tags[:, :width, 0], ids)
        np.testing.assert_array_equal(
            tags[:, :width, 1], np.broadcast_to(np.arange(width), ids.shape)
        )
        assert (tags[:, width:, 0] == PAD).all()
