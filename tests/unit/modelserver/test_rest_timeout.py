"""``--rest_api_timeout_in_ms`` is a REST predict's deadline, as TF Serving sets it.

Known-left item of the hostile passes: the flag was accepted and ignored, so a REST request
split into many batches ran them all however long it took (a gRPC call stops between two
batches at its deadline). TF Serving sets it as every REST call's ``RunOptions.timeout_in_ms``
(``http_rest_api_handler.cc``; default 30000, none when <= 0): DEADLINE_EXCEEDED, HTTP 504.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.modelserver.config import BatchingSettings, ModelSettings
from serving.modelserver.main import build_parser, options_from_args
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.rest import create_rest_app

URL = "/v1/models/m:predict"
BODY = {"instances": [1.0, 2.0, 3.0]}  # three rows: three batches of max_batch_size 1


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelManager]:
    from tests.support.tfserving_models import build_conformance_repo

    repo = build_conformance_repo(tmp_path_factory.mktemp("conformance"))
    models = [ModelSettings("m", repo / "half_plus_two")]
    batching = BatchingSettings(max_batch_size=1)
    manager = ModelManager(models, ServerMetrics(), batching=batching, poll_seconds=0)
    manager.poll_once()
    yield manager
    manager.stop()


def _post(manager: ModelManager, timeout_seconds: float | None) -> tuple[int, dict[str, object]]:
    metrics = ServerMetrics()
    app = create_rest_app(manager, metrics, "/metrics", bool, timeout_seconds=timeout_seconds)
    response = app.test_client().post(URL, json=BODY)
    return response.status_code, response.get_json()


def test_a_rest_predict_stops_at_its_timeout_between_batches(manager: ModelManager) -> None:
    # A nanosecond: passed once the first batch has run, whatever the machine's speed.
    status, body = _post(manager, 1e-9)
    assert status == 504, body
    assert body == {"error": "Deadline exceeded after 1 of the request's 3 rows"}


def test_a_rest_predict_within_its_timeout_or_without_one_is_answered(
    manager: ModelManager,
) -> None:
    for timeout in (None, 3600.0):
        status, body = _post(manager, timeout)
        assert status == 200 and body == {"predictions": [2.5, 3.0, 3.5]}


@pytest.mark.parametrize(
    ("flag", "seconds"),
    [([], 30.0), (["--rest_api_timeout_in_ms=250"], 0.25), (["--rest_api_timeout_in_ms=0"], None)],
)
def test_the_flag_sets_the_deadline_as_tf_serving(
    tmp_path: Path, flag: list[str], seconds: float | None
) -> None:
    args = build_parser().parse_args(["--model_base_path", str(tmp_path), *flag])
    assert options_from_args(args).rest_timeout_seconds == seconds
